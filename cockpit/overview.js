/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Overview: the Manager's properties, live from PropertiesChanged, and the
 * certificates that expire soon, live from the ObjectManager's signals:
 * smimed's own ExpiringCertificates within its [Policy] ExpiryWarningDays=
 * (CAs left out), the same smimectl status and the journal announce. */
"use strict";

const EXPIRING_SHOWN = 20;

const TOKEN_HELP = {
    ready: "",
    locked: "The token did not accept a PIN: the PIN is missing, wrong, or the token locked it. " +
            "Put the right PIN in the token-pin credential or the file [Token] PINFile= names " +
            "(/etc/smimed/smimed.conf), then reload the configuration.",
    absent: "No token matches [Token] URI= in /etc/smimed/smimed.conf. Plug in or initialize the token " +
            "(SoftHSM2: softhsm2-util --init-token), or correct the URI; smimed looks for it again by itself.",
    error: "The PKCS#11 module or the token failed. Check [Token] Module= and smimed's journal " +
           "(journalctl -u smimed), then reload the configuration.",
};

const smimedOverview = {
    props: {},

    init() {
        smimedDom.$("overview-reload").addEventListener("click", () => this.reload());
    },

    async refresh() {
        try {
            this.props = await smimedApi.manager();
            smimedDom.showError("connection-error", null);
            this.render();
        } catch (err) {
            smimedDom.showError("connection-error", err);
        }
        this.refreshExpiring();
    },

    changed(props) {
        Object.assign(this.props, props);
        this.render();
        if ("ExpiringCertificates" in props || "ExpiryWarningDays" in props)
            this.refreshExpiring();
    },

    render() {
        const p = this.props;
        const $ = smimedDom.$;
        $("overview-version").textContent = p.Version || "-";
        $("overview-enabled").textContent = p.Enabled
            ? "enabled"
            : "disabled by [Policy] Enabled=no: mail applications hide their Sign and Encrypt buttons";
        const state = p.TokenState || "-";
        const stateEl = $("overview-token-state");
        stateEl.textContent = state;
        stateEl.className = "state-" + state;
        $("overview-token-label").textContent = p.TokenLabel ? "(" + p.TokenLabel + ")" : "";
        const help = [p.TokenStateReason, TOKEN_HELP[state]].filter(s => s).join(" ");
        $("overview-token-help").textContent = help;
        $("overview-cert-count").textContent = String(p.CertificateCount ?? "-");
        $("overview-key-count").textContent = String(p.KeyCount ?? "-");
        $("overview-crl").textContent = p.CRLUpdated ? smimedDom.datetime(p.CRLUpdated) : "none since smimed started";
    },

    /* Rows come ordered by NotAfter: those before now (expired) first.
     * Two counts give where the ones expiring soon start, so a store with
     * many expired certificates costs no more than one with none. The
     * window and the count are smimed's (ExpiryWarningDays,
     * ExpiringCertificates), so the page and smimectl status agree. */
    async refreshExpiring() {
        const list = smimedDom.$("overview-expiring");
        const title = smimedDom.$("overview-expiring-title");
        const days = this.props.ExpiryWarningDays;
        if (days === undefined)
            return; /* the properties come first */
        if (days === 0) {
            title.textContent = "Certificates expiring soon";
            smimedDom.clear(list);
            list.append(smimedDom.el("li", { class: "hint" },
                                     "Not watched: [Policy] ExpiryWarningDays=0 in /etc/smimed/smimed.conf."));
            smimedDom.showError("overview-expiring-error", null);
            return;
        }
        title.textContent = `Certificates expiring within ${days} days`;
        try {
            const now = Date.now() * 1000;
            const soon = now + days * 86400 * 1e6;
            const { total: expired } = await smimedApi.listCertificates({ expiringBefore: now, ca: false,
                                                                         limit: 1 });
            const { total, items } = await smimedApi.listCertificates({ expiringBefore: soon, ca: false,
                                                                       offset: expired, limit: EXPIRING_SHOWN });
            const expiring = items.filter(c => c.notAfter > now);
            const count = Math.max(this.props.ExpiringCertificates ?? (total - expired), expiring.length);
            smimedDom.clear(list);
            for (const c of expiring) {
                const left = Math.ceil((c.notAfter - now) / 86400e6);
                list.append(smimedDom.el("li", { dataset: { fingerprint: c.fingerprint } },
                                         smimedDom.el("a", { href: "#/certificates/" + c.fingerprint },
                                                      c.addresses.join(", ") || c.subject),
                                         ` expires ${smimedDom.date(c.notAfter)} (in ${left} days)`));
            }
            if (count > expiring.length)
                list.append(smimedDom.el("li", {}, `and ${count - expiring.length} more`));
            if (count === 0)
                list.append(smimedDom.el("li", { class: "hint" }, "none"));
            smimedDom.showError("overview-expiring-error", null);
        } catch (err) {
            smimedDom.clear(list);
            smimedDom.showError("overview-expiring-error", err);
        }
    },

    async reload() {
        const out = smimedDom.$("overview-reload-result");
        out.textContent = "";
        out.className = "";
        try {
            await smimedApi.reload();
            out.textContent = "Configuration reloaded.";
            out.className = "result";
        } catch (err) {
            out.textContent = smimedApi.errorText(err);
            out.className = "error";
        }
    },
};
