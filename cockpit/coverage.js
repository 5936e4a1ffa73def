/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Coverage: GetCapabilities as a composer asks it, with smimectl coverage's
 * ✅/❌ lines. */
"use strict";

const smimedCoverage = {
    init() {
        smimedDom.$("cov-button").addEventListener("click", () => this.check());
    },

    async check() {
        const $ = smimedDom.$;
        const el = smimedDom.el;
        const sender = $("cov-sender").value.trim();
        const recipients = $("cov-recipients").value.split(/[\s,;]+/).filter(s => s);
        const tbody = $("cov-results").tBodies[0];
        smimedDom.showError("cov-error", null);
        smimedDom.clear(tbody);
        if (!sender && recipients.length === 0)
            return smimedDom.showError("cov-error", "Give a sender, recipients, or both.");
        let caps;
        try {
            caps = await smimedApi.capabilities(sender, recipients);
        } catch (err) {
            return smimedDom.showError("cov-error", err);
        }
        const line = (what, c) => {
            const detail = c.possible
                ? c.summary || ""
                : c.reason + ": " + (c.message || "") + (c.summary ? " — " + c.summary : "");
            return el("tr", { class: "cov-row", dataset: { what, address: c.address, possible: c.possible ? "yes" : "no", reason: c.reason || "" } },
                      el("td", {}, (c.possible ? "✅ " : "❌ ") + (what === "sign" ? "Sign" : "🔒 Encrypt")),
                      el("td", {}, c.address),
                      el("td", { class: "cov-detail" }, detail));
        };
        if (caps.sign)
            tbody.append(line("sign", caps.sign));
        for (const c of caps.encrypt)
            tbody.append(line("encrypt", c));
    },
};
