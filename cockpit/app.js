/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The page: tabs from cockpit.location, the connection, and what each
 * change from the daemon refreshes. */
"use strict";

const PAGES = {
    overview: smimedOverview,
    certificates: smimedCertificates,
    keys: smimedKeys,
    coverage: smimedCoverage,
};

function currentPage() {
    const page = cockpit.location.path[0];
    return PAGES[page] ? page : "overview";
}

function navigate() {
    const page = currentPage();
    for (const name of Object.keys(PAGES)) {
        smimedDom.$("page-" + name).hidden = name !== page;
        document.querySelector(`#tabs a[data-page="${name}"]`).classList.toggle("active", name === page);
    }
    if (page === "overview")
        smimedOverview.refresh();
    else if (page === "certificates") {
        smimedCertificates.render();
        smimedCertificates.show(cockpit.location.path[1]);
    } else if (page === "keys")
        smimedKeys.render();
}

/* A batch of InterfacesAdded (an import of many certificates) reloads the
 * page's list once, not once per certificate. */
const REFRESH_DELAY_MS = 200;
let refreshTimer = null;

function refreshSoon() {
    if (refreshTimer !== null)
        return;
    refreshTimer = window.setTimeout(() => {
        refreshTimer = null;
        const page = currentPage();
        if (page === "overview")
            smimedOverview.refreshExpiring();
        else if (page === "certificates")
            smimedCertificates.render();
        else if (page === "keys")
            smimedKeys.render();
    }, REFRESH_DELAY_MS);
}

/* What the daemon changed: the overview always follows; the page shown
 * reloads its lists. */
function changed(what, detail) {
    const page = currentPage();
    if (what === "connected") {
        navigate();
    } else if (what === "manager") {
        smimedOverview.changed(detail);
        if (page === "keys" && ("KeyCount" in detail || "TokenState" in detail))
            smimedKeys.render();
        if (page === "certificates" && "CRLUpdated" in detail)
            smimedCertificates.render();
    } else if (what === "objects") {
        refreshSoon();
    } else if (what === "gone") {
        smimedDom.showError("connection-error", { problem: "not-found" });
        smimedOverview.changed({ TokenState: "", TokenLabel: "", TokenStateReason: "" });
    } else if (what === "closed") {
        smimedDom.showError("connection-error", { problem: detail || "disconnected",
                                                  message: detail === "not-found" ? undefined : "Lost the connection to smimed: " + (detail || "disconnected") });
    } else if (what === "superuser") {
        smimedDom.$("admin-hint").hidden = detail !== "none";
    }
}

document.addEventListener("DOMContentLoaded", () => {
    for (const page of Object.values(PAGES))
        page.init();
    for (const a of document.querySelectorAll("#tabs a")) {
        a.addEventListener("click", ev => {
            ev.preventDefault();
            cockpit.location.go([a.dataset.page]);
        });
    }
    cockpit.addEventListener("locationchanged", navigate);
    smimedApi.addListener(changed);
    smimedApi.watchSuperuser();
    smimedApi.connect();
    document.body.dataset.ready = "yes";
});
