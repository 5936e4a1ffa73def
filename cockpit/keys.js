/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keys: the token's keys with their certificates; enroll a PKCS#12, generate
 * a key and its request, remove a key behind smimectl remove-key's guard. */
"use strict";

const KEY_ID_PREFIX_MIN = 8;   /* as smimectl remove-key */

const smimedKeys = {
    keys: [],
    removing: null,

    init() {
        const $ = smimedDom.$;
        $("p12-button").addEventListener("click", () => this.enroll());
        $("gen-button").addEventListener("click", () => this.generate());
        $("key-remove-button").addEventListener("click", () => this.remove());
        $("key-remove-cancel").addEventListener("click", () => this.closeRemove());
    },

    async render() {
        const tbody = smimedDom.$("key-table").tBodies[0];
        const el = smimedDom.el;
        try {
            this.keys = await smimedApi.listKeys();
            const certs = await smimedApi.certificatesByPath(this.keys.flatMap(k => k.certificates));
            const byPath = new Map(certs.map(c => [c.path, c]));
            smimedDom.showError("key-list-error", null);
            smimedDom.clear(tbody);
            for (const k of this.keys) {
                const list = el("ul", { class: "key-certificates" });
                for (const p of k.certificates) {
                    const c = byPath.get(p);
                    if (!c)
                        continue;
                    list.append(el("li", { title: c.summary },
                                   el("a", { href: "#/certificates/" + c.fingerprint },
                                      c.addresses.join(", ") || c.subject),
                                   " until " + smimedDom.date(c.notAfter)));
                }
                if (!list.firstChild)
                    list.append(el("li", { class: "hint" }, "none: import the certificate your CA issues for it"));
                tbody.append(el("tr", { dataset: { id: k.id } },
                                el("td", { class: "mono", title: k.uri }, k.id),
                                el("td", { class: "key-label" }, k.label),
                                el("td", {}, k.algorithm + (k.bits ? " " + k.bits : "")),
                                el("td", {}, list),
                                el("td", {}, el("button", { type: "button", class: "key-remove",
                                                            onclick: () => this.openRemove(k) }, "Remove…"))));
            }
            if (this.keys.length === 0)
                tbody.append(el("tr", {}, el("td", { colspan: 5, class: "hint" },
                                             "No keys (or the token is not ready: see the overview).")));
        } catch (err) {
            smimedDom.clear(tbody);
            smimedDom.showError("key-list-error", err);
        }
    },

    openRemove(k) {
        this.removing = k;
        smimedDom.$("key-remove-id").textContent = k.id + (k.label ? " (" + k.label + ")" : "");
        smimedDom.$("key-remove-confirm").value = "";
        smimedDom.showError("key-remove-error", null);
        smimedDom.$("key-remove").hidden = false;
        smimedDom.$("key-remove-confirm").focus();
    },

    closeRemove() {
        this.removing = null;
        smimedDom.$("key-remove").hidden = true;
    },

    /* smimectl remove-key's rule: a whole id, or a unique prefix of at
     * least KEY_ID_PREFIX_MIN digits. Returns the key or throws a sentence. */
    resolve(text) {
        const hex = text.trim().toLowerCase().replace(/[:\s]/g, "");
        if (!/^[0-9a-f]+$/.test(hex))
            throw `"${text}" is not a key id (hexadecimal digits, as the table shows them).`;
        const whole = this.keys.find(k => k.id === hex);
        if (whole)
            return whole;
        const matches = hex.length >= KEY_ID_PREFIX_MIN ? this.keys.filter(k => k.id.startsWith(hex)) : [];
        if (matches.length === 0)
            throw hex.length >= KEY_ID_PREFIX_MIN
                ? `No key in the token has an id that starts with ${hex}.`
                : `No key in the token has the id ${hex} (a prefix needs at least ${KEY_ID_PREFIX_MIN} digits).`;
        if (matches.length > 1)
            throw `${hex} is ambiguous: ${matches.length} keys have ids that start with it; give more digits.`;
        return matches[0];
    },

    async remove() {
        const k = this.removing;
        if (!k)
            return;
        smimedDom.showError("key-remove-error", null);
        try {
            const match = this.resolve(smimedDom.$("key-remove-confirm").value);
            if (match.id !== k.id)
                throw `${smimedDom.$("key-remove-confirm").value} names key ${match.id}, not ${k.id}.`;
            await smimedApi.removeKey(k.path);
            this.closeRemove();
            this.render();
        } catch (err) {
            smimedDom.showError("key-remove-error", err);
        }
    },

    async enroll() {
        const $ = smimedDom.$;
        const input = $("p12-file");
        const passphrase = $("p12-passphrase");
        $("p12-result").textContent = "";
        smimedDom.showError("p12-error", null);
        if (!input.files.length)
            return smimedDom.showError("p12-error", "Choose a PKCS#12 file (.p12, .pfx) first.");
        try {
            const bytes = await smimedDom.readFile(input.files[0]);
            /* The passphrase goes from the field into the call, and the field is emptied. */
            const result = await smimedApi.importPKCS12(bytes, passphrase.value);
            passphrase.value = "";
            input.value = "";
            const certs = await smimedApi.certificatesByPath(result.certificates);
            const id = result.key.substring(result.key.lastIndexOf("/") + 1);
            $("p12-result").textContent = `Enrolled key ${id}` +
                (certs.length ? " with " + certs.map(c => c.addresses.join(", ") || c.subject).join("; ") : "") + ".";
            this.render();
        } catch (err) {
            passphrase.value = "";
            smimedDom.showError("p12-error", err);
        }
    },

    async generate() {
        const $ = smimedDom.$;
        const address = $("gen-address").value.trim();
        smimedDom.showError("gen-error", null);
        $("gen-result").hidden = true;
        if (!address)
            return smimedDom.showError("gen-error", "Give the mail address the key is for.");
        $("gen-button").disabled = true;
        try {
            const { key, csr } = await smimedApi.generateKey(address, $("gen-type").value, $("gen-subject").value.trim());
            $("gen-key-id").textContent = key.substring(key.lastIndexOf("/") + 1);
            $("gen-csr").textContent = csr;
            const link = $("gen-csr-download");
            if (link.href.startsWith("blob:"))
                URL.revokeObjectURL(link.href);
            link.href = URL.createObjectURL(new Blob([csr], { type: "application/pkcs10" }));
            link.download = address.replace(/[^A-Za-z0-9@._-]/g, "_") + ".csr";
            $("gen-result").hidden = false;
            this.render();
        } catch (err) {
            smimedDom.showError("gen-error", err);
        } finally {
            $("gen-button").disabled = false;
        }
    },
};
