/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* smimed's D-Bus API as the pages use it: org.smimed1 on the system bus,
 * through cockpit.dbus() with superuser "try", so that Cockpit's
 * administrative access switch decides whether calls go out as the logged-in
 * user or as root; polkit decides the rest, as for any other client.
 * Nothing here touches the DOM. */
"use strict";

const SMIMED_BUS_NAME = "org.smimed1";
const SMIMED_MANAGER_PATH = "/org/smimed1";
const SMIMED_MANAGER = "org.smimed1.Manager";
const SMIMED_CERTIFICATE = "org.smimed1.Certificate";
const SMIMED_KEY = "org.smimed1.Key";
const SMIMED_CERTIFICATE_PREFIX = "/org/smimed1/certificate/";
/* The keys have an ObjectManager of their own (the Manager's holds the certificates). */
const SMIMED_KEY_MANAGER_PATH = "/org/smimed1/key";
const DBUS_PROPERTIES = "org.freedesktop.DBus.Properties";
const DBUS_OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager";

const DENIED_ERRORS = [
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
];

/* What GetAll on a certificate removed meanwhile answers. */
const GONE_ERRORS = [
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownInterface",
];

const smimedApi = {
    client: null,
    superuser: null,        /* cockpit.Superuser's "Current": "none", "root", … */
    objects: null,          /* a promise of the keys' GetManagedObjects, until a signal invalidates it */
    listeners: [],

    /* Connects (again, after the administrative access switch changed) and
     * calls every listener with the kind of change: "connected",
     * "manager" (with the changed properties), "objects", "closed" (with a
     * problem), "gone" (smimed left the bus; "connected" again when it is
     * back). */
    connect() {
        if (this.client)
            this.client.close();
        this.objects = null;
        const client = cockpit.dbus(SMIMED_BUS_NAME, { bus: "system", superuser: "try" });
        this.client = client;
        client.addEventListener("close", (ev, options) => {
            if (this.client === client)
                this.emit("closed", options && options.problem);
        });
        /* smimed restarted (or left): its objects are new, or gone. */
        let owner;
        client.addEventListener("owner", (ev, now) => {
            if (this.client !== client)
                return;
            const before = owner;
            owner = now;
            if (now === before)
                return;
            this.objects = null;
            if (!now)
                this.emit("gone");
            else if (before !== undefined)
                this.emit("connected");
        });
        client.subscribe({ path_namespace: SMIMED_MANAGER_PATH }, (path, iface, signal, args) => {
            if (this.client !== client)
                return;
            if (iface === DBUS_OBJECT_MANAGER) {
                this.objects = null;
                this.emit("objects", { added: signal === "InterfacesAdded", path: args[0] });
            } else if (iface === DBUS_PROPERTIES && signal === "PropertiesChanged") {
                if (path === SMIMED_MANAGER_PATH && args[0] === SMIMED_MANAGER) {
                    this.emit("manager", unwrap(args[1]));
                } else {
                    this.objects = null;
                    this.emit("objects", { changed: true, path });
                }
            }
        });
        this.emit("connected");
    },

    /* The administrative access switch: reconnect when it changes. */
    watchSuperuser() {
        const proxy = cockpit.dbus(null, { bus: "internal" }).proxy("cockpit.Superuser", "/superuser");
        proxy.addEventListener("changed", () => {
            if (proxy.Current === this.superuser)
                return;
            const first = this.superuser === null;
            this.superuser = proxy.Current;
            this.emit("superuser", proxy.Current);
            if (!first)
                this.connect();
        });
    },

    addListener(fn) {
        this.listeners.push(fn);
    },

    emit(what, detail) {
        for (const fn of this.listeners)
            fn(what, detail);
    },

    call(path, iface, method, args, type) {
        return this.client.call(path, iface, method, args, type !== undefined ? { type } : {});
    },

    async getProperty(path, iface, name) {
        const [v] = await this.call(path, DBUS_PROPERTIES, "Get", [iface, name], "ss");
        return v.v;
    },

    /* Manager properties, unwrapped: {Version: "0.1.0", …} */
    async manager() {
        const [props] = await this.call(SMIMED_MANAGER_PATH, DBUS_PROPERTIES, "GetAll", [SMIMED_MANAGER], "s");
        return unwrap(props);
    },

    /* The keys' ObjectManager tree (the certificates are listed by
     * ListCertificates, a page at a time: the store may be large). */
    keyObjects() {
        if (!this.objects) {
            const p = this.call(SMIMED_KEY_MANAGER_PATH, DBUS_OBJECT_MANAGER, "GetManagedObjects", [], "")
                    .then(([objects]) => objects);
            p.catch(() => { if (this.objects === p) this.objects = null });
            this.objects = p;
        }
        return this.objects;
    },

    /* One page of certificates, as the Manager's ListCertificates gives it:
     * {total, items: [row]}, ordered by NotAfter, then fingerprint. query:
     * {address (a prefix), status (a Status word), expiringBefore (µs),
     * ca (true, false), offset, limit}; absent or "" means no filter. A row
     * has path, fingerprint, addresses, subject, issuer, notAfter, status,
     * trusted, isCA, hasPrivateKey; the rest of a certificate (CommonName,
     * Summary, StatusText, …) is read per row, by certificatesByPath().
     *
     * This is the one function that knows how certificates are listed. */
    async listCertificates(query) {
        const filter = {};
        const address = (query.address || "").trim();
        if (address)
            filter.address = { t: "s", v: address };
        if (query.status)
            filter.status = { t: "s", v: query.status };
        if (query.expiringBefore)
            filter["expiring-before"] = { t: "t", v: query.expiringBefore };
        if (query.ca !== undefined && query.ca !== null)
            filter.ca = { t: "b", v: !!query.ca };
        if (query.offset)
            filter.offset = { t: "t", v: query.offset };
        if (query.limit)
            filter.limit = { t: "u", v: query.limit };
        const [rows, total] = await this.call(SMIMED_MANAGER_PATH, SMIMED_MANAGER, "ListCertificates",
                                              [filter], "a{sv}");
        const items = rows.map(([path, fingerprint, addresses, subject, issuer, notAfter, status,
            trusted, isCA, hasPrivateKey]) =>
            ({ path, fingerprint, addresses, subject, issuer, notAfter, status, trusted, isCA, hasPrivateKey }));
        return { total, items };
    },

    /* Certificates by object path, with what GetAll gives (not the
     * validation-backed properties); a path that is no longer in the store
     * is left out. One call per path: for a page or a key's few. */
    async certificatesByPath(paths) {
        const answers = await Promise.all(paths.map(path =>
            this.call(path, DBUS_PROPERTIES, "GetAll", [SMIMED_CERTIFICATE], "s").then(
                ([props]) => certificateFromProperties(path, unwrap(props)),
                err => {
                    if (err && GONE_ERRORS.includes(err.name))
                        return null;
                    throw err;
                })));
        return answers.filter(c => c);
    },

    /* {status, statusText}: what a table row shows. */
    async certificateRowStatus(path) {
        const [status, statusText] = await Promise.all([
            this.getProperty(path, SMIMED_CERTIFICATE, "Status"),
            this.getProperty(path, SMIMED_CERTIFICATE, "StatusText"),
        ]);
        return { status, statusText };
    },

    certificatePath(fingerprint) {
        return SMIMED_CERTIFICATE_PREFIX + fingerprint;
    },

    /* All properties of one certificate, the explicit ones too (not DER). */
    async certificate(path) {
        const [[props], status] = await Promise.all([
            this.call(path, DBUS_PROPERTIES, "GetAll", [SMIMED_CERTIFICATE], "s"),
            this.certificateStatus(path),
        ]);
        const c = certificateFromProperties(path, unwrap(props));
        return Object.assign(c, status);
    },

    /* {status, statusText, canSign, canEncrypt, chain: [{fingerprint, subject}]}:
     * computed by smimed when read, as smimectl reads them. */
    async certificateStatus(path) {
        const get = name => this.getProperty(path, SMIMED_CERTIFICATE, name);
        const [status, statusText, canSign, canEncrypt, chain] = await Promise.all([
            get("Status"), get("StatusText"), get("CanSign"), get("CanEncrypt"), get("Chain"),
        ]);
        return {
            status, statusText, canSign, canEncrypt,
            chain: chain.map(([fingerprint, subject]) => ({ fingerprint, subject })),
        };
    },

    /* The certificate as PEM (DER is left out of GetAll: asked for by name). */
    async certificatePem(path) {
        const b64 = await this.getProperty(path, SMIMED_CERTIFICATE, "DER");
        const lines = b64.match(/.{1,64}/g) || [];
        return "-----BEGIN CERTIFICATE-----\n" + lines.join("\n") + "\n-----END CERTIFICATE-----\n";
    },

    setTrusted(path, trusted) {
        return this.call(path, SMIMED_CERTIFICATE, "SetTrusted", [trusted], "b");
    },

    removeCertificate(path) {
        return this.call(path, SMIMED_CERTIFICATE, "Remove", [], "");
    },

    /* [{path, id, label, algorithm, bits, uri, certificates: [path]}] */
    async listKeys() {
        const objects = await this.keyObjects();
        const keys = [];
        for (const [path, ifaces] of Object.entries(objects)) {
            if (!ifaces[SMIMED_KEY])
                continue;
            const p = unwrap(ifaces[SMIMED_KEY]);
            keys.push({
                path,
                id: p.Id || "",
                label: p.Label || "",
                algorithm: p.Algorithm || "",
                bits: p.Bits || 0,
                uri: p.URI || "",
                certificates: p.Certificates || [],
            });
        }
        keys.sort((a, b) => (a.label + a.id).localeCompare(b.label + b.id));
        return keys;
    },

    /* The key's certificates as they are now (Certificates does not signal
     * its changes), each with its Status: [certificate + {status}]. */
    async keyCertificates(path) {
        const paths = await this.getProperty(path, SMIMED_KEY, "Certificates");
        const certs = await this.certificatesByPath(paths);
        await Promise.all(certs.map(async c => Object.assign(c, await this.certificateRowStatus(c.path))));
        return certs;
    },

    removeKey(path) {
        return this.call(path, SMIMED_KEY, "Remove", [], "");
    },

    /* → [certificate paths] */
    async importCertificates(bytes, trust) {
        const [paths] = await this.call(SMIMED_MANAGER_PATH, SMIMED_MANAGER, "ImportCertificates",
                                        [base64(bytes), { trust: { t: "b", v: !!trust } }], "aya{sv}");
        return paths;
    },

    /* → how many CRLs were stored */
    async importCRL(bytes) {
        const [count] = await this.call(SMIMED_MANAGER_PATH, SMIMED_MANAGER, "ImportCRL",
                                        [base64(bytes), {}], "aya{sv}");
        return count;
    },

    /* The byte-array twin of ImportPKCS12: a browser cannot pass a file
     * descriptor. The passphrase goes into this one call and nowhere else.
     * → {key, certificates} */
    async importPKCS12(bytes, passphrase) {
        const [key, certificates] = await this.call(SMIMED_MANAGER_PATH, SMIMED_MANAGER, "ImportPKCS12Data",
                                                    [base64(bytes), passphrase, {}], "aysa{sv}");
        return { key, certificates };
    },

    /* → {key, csr}. options: {type, subject, renew (the fingerprint of a
     * certificate of address: its subject, addresses and key type are the
     * defaults)} */
    async generateKey(address, options) {
        const o = {};
        for (const name of ["type", "subject", "renew"])
            if (options[name])
                o[name] = { t: "s", v: options[name] };
        const [key, csr] = await this.call(SMIMED_MANAGER_PATH, SMIMED_MANAGER, "GenerateKey",
                                           [address, o], "sa{sv}");
        return { key, csr };
    },

    /* → {sign: {…} or null, encrypt: [{…}]}, dictionaries unwrapped */
    async capabilities(sender, recipients) {
        const [sign, encrypt] = await this.call(SMIMED_MANAGER_PATH, SMIMED_MANAGER, "GetCapabilities",
                                                [sender, recipients, {}], "sasa{sv}");
        return { sign: sender ? unwrap(sign) : null, encrypt: encrypt.map(unwrap) };
    },

    reload() {
        return this.call(SMIMED_MANAGER_PATH, SMIMED_MANAGER, "Reload", [], "");
    },

    isDenied(err) {
        return !!err && (DENIED_ERRORS.includes(err.name) || err.problem === "access-denied" ||
                         err.problem === "not-authorized");
    },

    /* What to show for a failed call: the daemon's own message, and for a
     * denial that the user is not allowed. */
    errorText(err) {
        if (typeof err === "string")
            return err;
        if (this.isDenied(err)) {
            let text = "You are not allowed to do this.";
            if (this.superuser === "none")
                text += " Turn on administrative access, or ask an administrator.";
            if (err.message)
                text += " (" + err.message + ")";
            return text;
        }
        if (err && err.problem === "not-found")
            return "smimed is not running (org.smimed1 is not on the system bus).";
        return (err && (err.message || err.problem)) || String(err);
    },
};

/* {Name: {t, v}} → {Name: v} */
function unwrap(props) {
    const out = {};
    for (const [k, v] of Object.entries(props || {}))
        out[k] = v && typeof v === "object" && "v" in v ? v.v : v;
    return out;
}

function base64(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000)
        s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
}

function certificateFromProperties(path, p) {
    return {
        path,
        fingerprint: p.Fingerprint || path.substring(SMIMED_CERTIFICATE_PREFIX.length),
        subject: p.Subject || "",
        issuer: p.Issuer || "",
        commonName: p.CommonName || "",
        serial: p.SerialNumber || "",
        addresses: p.Addresses || [],
        notBefore: p.NotBefore || 0,
        notAfter: p.NotAfter || 0,
        keyAlgorithm: p.KeyAlgorithm || "",
        keyBits: p.KeyBits || 0,
        isCA: !!p.IsCA,
        trusted: !!p.Trusted,
        hasPrivateKey: !!p.HasPrivateKey,
        summary: p.Summary || "",
    };
}
