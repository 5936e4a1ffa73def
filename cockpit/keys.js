/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keys: the token's keys with their certificates; enroll a PKCS#12, generate
 * a key and its request, renew a certificate (a new key, a request like the
 * old certificate), remove a key behind smimectl remove-key's guards. */
"use strict";

const KEY_ID_PREFIX_MIN = 8;   /* as smimectl remove-key */

const smimedKeys = {
    keys: [],
    removing: null,         /* the key in the remove panel */
    current: null,          /* its current certificates, as the panel shows them */
    renewing: null,         /* {key, certificate} in the renew panel */

    init() {
        const $ = smimedDom.$;
        $("p12-button").addEventListener("click", () => this.enroll());
        $("gen-button").addEventListener("click", () => this.generate());
        $("key-remove-button").addEventListener("click", () => this.remove());
        $("key-remove-cancel").addEventListener("click", () => this.closeRemove());
        $("renew-button").addEventListener("click", () => this.renew());
        $("renew-close").addEventListener("click", () => this.closeRenew());
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
                    const renew = c.isCA || c.addresses.length === 0
                        ? null
                        : el("button", { type: "button", class: "key-renew", onclick: () => this.openRenew(k, c) },
                             "Renew…");
                    list.append(el("li", { title: c.summary, dataset: { fingerprint: c.fingerprint } },
                                   el("a", { href: "#/certificates/" + c.fingerprint },
                                      c.addresses.join(", ") || c.subject),
                                   " until " + smimedDom.date(c.notAfter), " ", renew));
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

    /* smimectl remove-key's guard (refuse_if_only_key): a certificate that
     * has not expired and is not revoked can still be encrypted to, and
     * only this key decrypts what is. Reads them fresh: [certificate]. */
    async currentCertificates(k) {
        const now = Date.now() * 1000;
        const certs = await smimedApi.keyCertificates(k.path);
        return certs.filter(c => c.notAfter > now && c.status !== "revoked");
    },

    async openRemove(k) {
        const $ = smimedDom.$;
        this.removing = k;
        this.current = null;
        $("key-remove-id").textContent = k.id + (k.label ? " (" + k.label + ")" : "");
        $("key-remove-confirm").value = "";
        $("key-remove-force").checked = false;
        $("key-remove-guard").hidden = true;
        smimedDom.showError("key-remove-error", null);
        $("key-remove").hidden = false;
        $("key-remove-confirm").focus();
        try {
            const current = await this.currentCertificates(k);
            if (this.removing !== k)
                return;
            this.current = current;
            this.showGuard(k, current);
        } catch (err) {
            if (this.removing === k)
                smimedDom.showError("key-remove-error", err);
        }
    },

    showGuard(k, current) {
        const $ = smimedDom.$;
        const list = $("key-remove-current");
        smimedDom.clear(list);
        for (const c of current)
            list.append(smimedDom.el("li", { dataset: { fingerprint: c.fingerprint } },
                                     (c.addresses[0] || c.subject) + ", valid until " + smimedDom.date(c.notAfter) +
                                     " (" + smimedDom.statusText(c.status) + ")"));
        $("key-remove-guard").hidden = current.length === 0;
    },

    closeRemove() {
        this.removing = null;
        this.current = null;
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
        const $ = smimedDom.$;
        const k = this.removing;
        if (!k)
            return;
        smimedDom.showError("key-remove-error", null);
        try {
            const match = this.resolve($("key-remove-confirm").value);
            if (match.id !== k.id)
                throw `${$("key-remove-confirm").value} names key ${match.id}, not ${k.id}.`;
            /* Asked again now: a certificate may have been imported since the panel opened. */
            const current = await this.currentCertificates(k);
            if (this.removing !== k)
                return;
            const shown = (this.current || []).map(c => c.fingerprint).join();
            this.current = current;
            this.showGuard(k, current);
            if (current.map(c => c.fingerprint).join() !== shown)
                $("key-remove-force").checked = false;   /* confirmed for other certificates than these */
            if (current.length > 0 && !$("key-remove-force").checked)
                throw `Key ${k.id} is the only key that can decrypt mail sent to ` +
                      current.map(c => (c.addresses[0] || c.subject) + " (valid until " + smimedDom.date(c.notAfter) + ")").join(", ") +
                      `: without it such mail cannot be read. Tick "Remove anyway" to remove it all the same.`;
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

    /* The request in the <pre> and behind the download link of prefix-csr… */
    offerRequest(prefix, address, csr) {
        const $ = smimedDom.$;
        $(prefix + "-csr").textContent = csr;
        const link = $(prefix + "-csr-download");
        if (link.href.startsWith("blob:"))
            URL.revokeObjectURL(link.href);
        link.href = URL.createObjectURL(new Blob([csr], { type: "application/pkcs10" }));
        link.download = address.replace(/[^A-Za-z0-9@._-]/g, "_") + ".csr";
    },

    openRenew(k, c) {
        const $ = smimedDom.$;
        this.renewing = { key: k, certificate: c };
        for (const e of document.querySelectorAll(".renew-address"))
            e.textContent = c.addresses[0];
        $("renew-addresses").textContent = c.addresses.join(", ");
        $("renew-subject").textContent = c.subject;
        $("renew-old-key").textContent = k.id;
        $("renew-until").textContent = smimedDom.date(c.notAfter);
        smimedDom.showError("renew-error", null);
        $("renew-result").hidden = true;
        $("renew-button").disabled = false;
        $("renew").hidden = false;
        $("renew").scrollIntoView();
    },

    closeRenew() {
        this.renewing = null;
        smimedDom.$("renew").hidden = true;
    },

    /* smimectl renew: GenerateKey with "renew", the certificate's
     * fingerprint; the daemon takes its subject, addresses and key type. */
    async renew() {
        const $ = smimedDom.$;
        const r = this.renewing;
        if (!r)
            return;
        const address = r.certificate.addresses[0];
        smimedDom.showError("renew-error", null);
        $("renew-button").disabled = true;
        try {
            const { key, csr } = await smimedApi.generateKey(address, { renew: r.certificate.fingerprint });
            if (this.renewing !== r)
                return;
            $("renew-key-id").textContent = key.substring(key.lastIndexOf("/") + 1);
            this.offerRequest("renew", address, csr);
            $("renew-result").hidden = false;
            this.render();
        } catch (err) {
            $("renew-button").disabled = false;
            smimedDom.showError("renew-error", err);
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
            const { key, csr } = await smimedApi.generateKey(address, { type: $("gen-type").value,
                                                                        subject: $("gen-subject").value.trim() });
            $("gen-key-id").textContent = key.substring(key.lastIndexOf("/") + 1);
            this.offerRequest("gen", address, csr);
            $("gen-result").hidden = false;
            this.render();
        } catch (err) {
            smimedDom.showError("gen-error", err);
        } finally {
            $("gen-button").disabled = false;
        }
    },
};
