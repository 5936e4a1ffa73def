/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Certificates: the store as a table, filtered, ordered by expiry and paged
 * by smimed (ListCertificates); details with the chain; import, CRLs,
 * trust, removal, export. */
"use strict";

const CERT_PAGE_SIZE = 25;

const smimedCertificates = {
    /* What ListCertificates is asked: the server filters, orders (by
     * expiry) and pages; nothing is sorted here. */
    query: { address: "", status: "", offset: 0, limit: CERT_PAGE_SIZE },
    total: 0,
    generation: 0,          /* drops answers to an older render() */
    details: null,          /* the certificate shown in the details panel */

    init() {
        const $ = smimedDom.$;
        $("cert-filter").addEventListener("input", ev => {
            this.query.address = ev.target.value.trim();
            this.query.offset = 0;
            this.render();
        });
        $("cert-status-filter").addEventListener("change", ev => {
            this.query.status = ev.target.value;
            this.query.offset = 0;
            this.render();
        });
        $("cert-prev").addEventListener("click", () => this.page(-1));
        $("cert-next").addEventListener("click", () => this.page(1));
        $("cert-import-button").addEventListener("click", () => this.importCertificates());
        $("crl-import-button").addEventListener("click", () => this.importCRL());
        $("cert-details-close").addEventListener("click", () => cockpit.location.go(["certificates"]));
        $("cert-trust").addEventListener("click", () => this.setTrusted(true));
        $("cert-untrust").addEventListener("click", () => this.setTrusted(false));
        $("cert-export").addEventListener("click", () => this.exportPem());
        $("cert-remove").addEventListener("click", () => this.remove());
    },

    page(step) {
        const offset = this.query.offset + step * CERT_PAGE_SIZE;
        if (offset < 0 || offset >= this.total)
            return;
        this.query.offset = offset;
        this.render();
    },

    /* One page from ListCertificates, then per row shown what the table
     * needs beyond it (commonName, the summary, the reason of a status that
     * is not valid): a page's worth of calls, whatever the store's size. */
    async render() {
        const generation = ++this.generation;
        const tbody = smimedDom.$("cert-table").tBodies[0];
        let result, more;
        try {
            result = await smimedApi.listCertificates(this.query);
            if (generation === this.generation)
                more = await this.rowDetails(result.items);
        } catch (err) {
            if (generation === this.generation)
                smimedDom.showError("cert-list-error", err);
            return;
        }
        if (generation !== this.generation)
            return;
        smimedDom.showError("cert-list-error", null);
        if (result.total > 0 && this.query.offset >= result.total) {
            this.query.offset = Math.floor((result.total - 1) / CERT_PAGE_SIZE) * CERT_PAGE_SIZE;
            return this.render();
        }
        this.total = result.total;
        smimedDom.clear(tbody);
        for (const c of result.items)
            tbody.append(this.row(c, more.get(c.path)));
        if (result.items.length === 0)
            tbody.append(smimedDom.el("tr", {}, smimedDom.el("td", { colspan: 7, class: "hint" },
                                                             this.query.address || this.query.status
                                                                 ? "No certificate matches." : "The store is empty.")));
        const first = result.total ? this.query.offset + 1 : 0;
        const last = this.query.offset + result.items.length;
        smimedDom.$("cert-page-info").textContent = `${first}–${last} of ${result.total}`;
        smimedDom.$("cert-prev").disabled = this.query.offset === 0;
        smimedDom.$("cert-next").disabled = last >= result.total;
    },

    /* path → {commonName, summary, statusText} for the rows of a page. */
    async rowDetails(items) {
        const [certs, texts] = await Promise.all([
            smimedApi.certificatesByPath(items.map(c => c.path)),
            Promise.all(items.map(c => c.status === "valid"
                ? ""
                : smimedApi.getProperty(c.path, SMIMED_CERTIFICATE, "StatusText").catch(() => ""))),
        ]);
        const more = new Map(items.map((c, i) => [c.path, { statusText: texts[i] }]));
        for (const c of certs)
            Object.assign(more.get(c.path), { commonName: c.commonName, summary: c.summary });
        return more;
    },

    row(c, more) {
        const el = smimedDom.el;
        more = more || {};
        const tr = el("tr", { class: "clickable", title: more.summary, dataset: { fingerprint: c.fingerprint } },
                      el("td", { class: "cert-address" }, c.addresses.join(", ") || "—"),
                      el("td", { class: "cert-subject" }, more.commonName || c.subject),
                      el("td", { class: "cert-issuer" }, c.issuer),
                      el("td", { class: "cert-status", title: c.status !== "valid" ? more.statusText : null,
                                 dataset: { status: c.status } }, smimedDom.statusText(c.status)),
                      el("td", { class: "cert-trust" }, c.trusted ? "anchor" : "-"),
                      el("td", { class: "cert-key" }, c.hasPrivateKey ? "yes" : "no"),
                      el("td", { class: "cert-expires" }, smimedDom.date(c.notAfter)));
        tr.addEventListener("click", () => cockpit.location.go(["certificates", c.fingerprint]));
        return tr;
    },

    /* The details panel for a fingerprint, or none. */
    async show(fingerprint) {
        const panel = smimedDom.$("cert-details");
        smimedDom.showError("cert-details-error", null);
        if (!fingerprint) {
            panel.hidden = true;
            this.details = null;
            return;
        }
        let c;
        try {
            c = await smimedApi.certificate(smimedApi.certificatePath(fingerprint));
        } catch (err) {
            panel.hidden = false;
            smimedDom.clear(smimedDom.$("cert-details-fields"));
            smimedDom.clear(smimedDom.$("cert-details-chain"));
            smimedDom.$("cert-details-summary").textContent = "";
            smimedDom.$("cert-details-title").textContent = fingerprint;
            smimedDom.showError("cert-details-error", err);
            return;
        }
        this.details = c;
        const el = smimedDom.el;
        const $ = smimedDom.$;
        $("cert-details-title").textContent = c.addresses[0] || c.commonName || c.subject;
        $("cert-details-summary").textContent = c.summary;
        const fields = $("cert-details-fields");
        smimedDom.clear(fields);
        const rows = [
            ["Fingerprint", c.fingerprint],
            ["Subject", c.subject],
            ["Issuer", c.issuer],
            ["Serial", c.serial],
            ["Addresses", c.addresses.join(", ") || "-"],
            ["Valid from", smimedDom.datetime(c.notBefore)],
            ["Valid until", smimedDom.datetime(c.notAfter)],
            ["Key", c.keyAlgorithm + (c.keyBits ? " " + c.keyBits : "")],
            ["CA", c.isCA ? "yes" : "no"],
            ["Trusted", c.trusted ? "yes (trust anchor)" : "no"],
            ["Private key", c.hasPrivateKey ? "in token" : "no"],
            ["Status", smimedDom.statusText(c.status) + (c.status !== "valid" && c.statusText ? " — " + c.statusText : "")],
            ["Can sign", c.canSign ? "yes" : "no"],
            ["Can encrypt", c.canEncrypt ? "yes" : "no"],
        ];
        for (const [k, v] of rows)
            fields.append(el("tr", {}, el("th", {}, k), el("td", { class: k === "Fingerprint" ? "mono" : null, id: "cert-field-" + k.toLowerCase().replace(" ", "-") }, v)));
        const chain = $("cert-details-chain");
        smimedDom.clear(chain);
        for (const link of c.chain) {
            const st = el("span", { class: "chain-status" }, "…");
            chain.append(el("li", { dataset: { fingerprint: link.fingerprint } },
                            el("a", { href: "#/certificates/" + link.fingerprint }, link.subject), " ", st,
                            el("div", { class: "mono hint" }, link.fingerprint)));
            smimedApi.certificateRowStatus(smimedApi.certificatePath(link.fingerprint)).then(
                s => { st.textContent = smimedDom.statusText(s.status); st.title = s.statusText },
                err => { st.textContent = "(" + smimedApi.errorText(err) + ")" });
        }
        $("cert-trust").hidden = c.trusted;
        $("cert-untrust").hidden = !c.trusted;
        this.resetRemove();
        panel.hidden = false;
    },

    resetRemove() {
        const b = smimedDom.$("cert-remove");
        b.textContent = "Remove";
        b.dataset.confirm = "";
    },

    async setTrusted(trusted) {
        if (!this.details)
            return;
        try {
            await smimedApi.setTrusted(this.details.path, trusted);
            await this.show(this.details.fingerprint);
        } catch (err) {
            smimedDom.showError("cert-details-error", err);
        }
    },

    async exportPem() {
        if (!this.details)
            return;
        try {
            const pem = await smimedApi.certificatePem(this.details.path);
            const name = (this.details.addresses[0] || this.details.fingerprint.substring(0, 16)) + ".pem";
            smimedDom.download(name, pem, "application/x-pem-file");
        } catch (err) {
            smimedDom.showError("cert-details-error", err);
        }
    },

    /* Two clicks: the first asks. */
    async remove() {
        const b = smimedDom.$("cert-remove");
        if (!this.details)
            return;
        if (b.dataset.confirm !== "yes") {
            b.textContent = "Click again to remove " + (this.details.addresses[0] || this.details.subject);
            b.dataset.confirm = "yes";
            return;
        }
        this.resetRemove();
        try {
            await smimedApi.removeCertificate(this.details.path);
            cockpit.location.go(["certificates"]);
        } catch (err) {
            smimedDom.showError("cert-details-error", err);
        }
    },

    async importCertificates() {
        const input = smimedDom.$("cert-import-file");
        const out = smimedDom.$("cert-import-result");
        out.textContent = "";
        smimedDom.showError("cert-import-error", null);
        if (!input.files.length)
            return smimedDom.showError("cert-import-error", "Choose a file first.");
        try {
            const bytes = await smimedDom.readFile(input.files[0]);
            const paths = await smimedApi.importCertificates(bytes, smimedDom.$("cert-import-trust").checked);
            out.textContent = `Imported ${paths.length} certificate${paths.length === 1 ? "" : "s"} from ${input.files[0].name}.`;
            input.value = "";
            this.render();
        } catch (err) {
            smimedDom.showError("cert-import-error", err);
        }
    },

    async importCRL() {
        const input = smimedDom.$("crl-import-file");
        const out = smimedDom.$("crl-import-result");
        out.textContent = "";
        smimedDom.showError("crl-import-error", null);
        if (!input.files.length)
            return smimedDom.showError("crl-import-error", "Choose a file first.");
        try {
            const bytes = await smimedDom.readFile(input.files[0]);
            const count = await smimedApi.importCRL(bytes);
            out.textContent = count === 0
                ? "Nothing stored: the store has a CRL of that issuer as new or newer."
                : `Stored ${count} CRL${count === 1 ? "" : "s"}; statuses are checked again.`;
            input.value = "";
            this.render();
        } catch (err) {
            smimedDom.showError("crl-import-error", err);
        }
    },
};
