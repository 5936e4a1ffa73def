/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small DOM helpers. Everything that comes from the daemon (subjects,
 * addresses, messages) goes in as text, never as markup. */
"use strict";

const smimedDom = {
    $(id) {
        return document.getElementById(id);
    },

    /* el("td", {class: "x", title: "…"}, "text", child, …) */
    el(tag, attrs, ...children) {
        const e = document.createElement(tag);
        for (const [k, v] of Object.entries(attrs || {})) {
            if (v === undefined || v === null || v === false)
                continue;
            if (k.startsWith("on"))
                e.addEventListener(k.substring(2), v);
            else if (k === "dataset")
                Object.assign(e.dataset, v);
            else
                e.setAttribute(k, v === true ? "" : v);
        }
        for (const c of children.flat()) {
            if (c === undefined || c === null)
                continue;
            e.append(c instanceof Node ? c : String(c));
        }
        return e;
    },

    clear(e) {
        while (e.firstChild)
            e.removeChild(e.firstChild);
    },

    /* Shows err (an Error, a D-Bus error or a string) in the error box id,
     * or hides the box when err is null. */
    showError(id, err) {
        const box = smimedDom.$(id);
        if (!err) {
            box.hidden = true;
            box.textContent = "";
            return;
        }
        box.textContent = smimedApi.errorText(err);
        box.hidden = false;
    },

    /* "2027-11-28" from µs since the epoch; "-" for 0. */
    date(usec) {
        if (!usec)
            return "-";
        return new Date(Number(usec) / 1000).toISOString().substring(0, 10);
    },

    datetime(usec) {
        if (!usec)
            return "-";
        return new Date(Number(usec) / 1000).toISOString().replace("T", " ").substring(0, 19) + " UTC";
    },

    /* smimectl's words, and its ✅/❌ */
    statusText(status) {
        if (!status)
            return "…";
        return (status === "valid" ? "✅ " : "❌ ") + status;
    },

    readFile(file) {
        return new Promise((resolve, reject) => {
            const reader = new FileReader();
            reader.onload = () => resolve(new Uint8Array(reader.result));
            reader.onerror = () => reject(new Error("Cannot read " + file.name + ": " + reader.error));
            reader.readAsArrayBuffer(file);
        });
    },

    /* Offers text as a file download. */
    download(name, text, type) {
        const url = URL.createObjectURL(new Blob([text], { type: type || "application/octet-stream" }));
        const a = smimedDom.el("a", { href: url, download: name, hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
    },
};
