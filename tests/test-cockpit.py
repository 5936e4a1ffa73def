#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Cockpit admin console in a real browser (issue 21).

tests/cockpit-harness starts what every integration test has (SoftHSM2
token, private dbus-daemon, real polkitd, the built smimed) and writes a
test PKI; this script starts cockpit-ws with a local cockpit-bridge session
on that bus (DBUS_SYSTEM_BUS_ADDRESS) and with the package from the source
tree, and drives headless Chromium through selenium and chromedriver:

  overview     the token is ready; with a wrong PIN it is locked, with what
               to do, and ready again after Reload; counts and "expiring soon" follow the
               daemon live (smimectl changes the store while the page is open)
  certificates a CA imported as trust anchor and leaves imported through the
               file upload show valid, expired, untrusted, and revoked once
               the CRL is imported; hover summary; smimed's order (expiry);
               the address prefix and status filters; details with the
               chain; export PEM equals the certificate
  keys         a PKCS#12 enrolls (a wrong passphrase first: the daemon's
               message in place); a generated key's CSR download passes
               openssl req -verify; renewing signer@'s certificate makes a
               new key and a request with its subject; remove-key's guards:
               the id typed, and for a key with a current certificate
               "Remove anyway"
  coverage     Sign/Encrypt verdicts with their reasons
  paging       36 certificates in pages of 25, each page one ListCertificates
               (offset, limit) and no GetManagedObjects; both filters;
               removal through the page
  denied       a Cockpit session of the unprivileged user "smimed-test":
               an import is refused with "You are not allowed"; with
               administrative access switched on (a privileged bridge the
               test provides in place of sudo) it passes, off again refused

Screenshots of each page go to --screenshots. Runs as root (the harness
needs it), with no network.
"""

import argparse
import base64
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    sys.exit("test-cockpit: python3-selenium is missing: run tools/install-deps")

COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"
CHROMEDRIVER = "/usr/bin/chromedriver"
TEST_USER = "smimed-test"
# Seconds for any one thing to appear; four times that with smimed under
# valgrind (meson test --setup valgrind sets SMIMED_TEST_WRAPPER).
WAIT = 120 if os.environ.get("SMIMED_TEST_WRAPPER") else 30


def log(*args):
    print("test-cockpit:", *args, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Harness:
    """cockpit-harness: runs until its stdin closes."""

    def __init__(self, program, pki):
        self.proc = subprocess.Popen([program, pki], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = {}
        for line in self.proc.stdout:
            line = line.strip()
            if line == "ready":
                break
            key, _, value = line.partition(" ")
            self.info[key] = value
        else:
            raise RuntimeError("cockpit-harness exited with %s before it was ready" % self.proc.wait())
        self.bus = self.info["bus"]

    def command(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "done":
            raise RuntimeError("cockpit-harness: %s: %s" % (cmd, answer or "exited"))

    def stop(self):
        """Its exit status: not 0 when smimed did not end well (under valgrind:
        a memory error or leak), or the helper itself leaked under ASan."""
        self.proc.stdin.close()
        return self.proc.wait(timeout=120)


class CockpitWs:
    """cockpit-ws with a local session (cockpit-bridge as user) on the harness bus."""

    def __init__(self, bus, data_dir, workdir, user=None):
        self.port = free_port()
        home = os.path.join(workdir, "home-" + (user or "root"))
        os.makedirs(home, exist_ok=True)
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": home,
            "DBUS_SYSTEM_BUS_ADDRESS": bus,
            # The package from the source tree first, then the system's base1.
            "XDG_DATA_DIRS": data_dir + ":/usr/local/share:/usr/share",
        }
        # In a PID namespace of its own: the bridge starts a session
        # dbus-daemon and an ssh-agent, which would outlive the test; when
        # unshare ends (stop()), its child, the namespace's init, is killed
        # and everything in the namespace with it.
        argv = ["unshare", "--pid", "--fork", "--kill-child"]
        if user:
            pw = pwd.getpwnam(user)
            os.chown(home, pw.pw_uid, pw.pw_gid)
            env.update(USER=user, LOGNAME=user)
            argv += ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--clear-groups"]
        argv += [COCKPIT_WS, "--no-tls", "--address", "127.0.0.1", "--port", str(self.port),
                 "--local-session=cockpit-bridge"]
        self.log_path = os.path.join(workdir, "cockpit-ws-%s.log" % (user or "root"))
        with open(self.log_path, "w") as logf:
            self.proc = subprocess.Popen(argv, env=env, cwd=home, stdout=logf, stderr=subprocess.STDOUT)
        # Until it accepts connections (it exits on a bad start).
        deadline = time.monotonic() + WAIT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("cockpit-ws exited with %s, see %s" % (self.proc.returncode, self.log_path))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("cockpit-ws does not listen on %d" % self.port)
                time.sleep(0.05)

    def url(self, page=""):
        return "http://127.0.0.1:%d/cockpit/@localhost/smimed/index.html%s" % (self.port, page)

    def stop(self):
        kill_namespace(self.proc)


def kill_namespace(proc):
    """Ends what `unshare --pid --fork` started: SIGKILL to the namespace's
    init (the only signal an init without a handler takes, and setpriv's
    change of user cleared the parent-death signal) ends everything in it."""
    try:
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        children = []
    for child in children:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


class PrivilegedBridges:
    """What sudo does for Cockpit's administrative access, without sudo: a
    Unix socket where each connection gets `cockpit-bridge --privileged`
    as root. tests/cockpit-superuser-proxy.py, spawned by the user's bridge
    from a test-only package's "bridges" entry, connects here."""

    def __init__(self, path, bus):
        self.path = path
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
                    "DBUS_SYSTEM_BUS_ADDRESS": bus}
        self.children = []
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(path)
        os.chmod(path, 0o666)  # the test user connects
        self.listener.listen()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            # In a PID namespace, as cockpit-ws: nothing it starts stays.
            self.children.append(subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child",
                                                   "cockpit-bridge", "--privileged"], stdin=conn.fileno(),
                                                  stdout=conn.fileno(), env=self.env))
            conn.close()

    def stop(self):
        self.listener.close()
        for child in self.children:
            kill_namespace(child)


class Test:
    def __init__(self, args):
        self.args = args
        self.workdir = tempfile.mkdtemp(prefix="smimed-cockpit.")
        os.chmod(self.workdir, 0o755)  # the test user's cockpit-ws reads the package in here
        self.pki = os.path.join(self.workdir, "pki")
        self.downloads = os.path.join(self.workdir, "downloads")
        os.makedirs(self.pki)
        os.makedirs(self.downloads)
        self.data_dir = os.path.join(self.workdir, "data")
        shutil.copytree(os.path.join(args.source, "cockpit"), os.path.join(self.data_dir, "cockpit", "smimed"))
        # A test-only package whose "privileged" bridge stands in for sudo.
        self.superuser_socket = os.path.join(self.workdir, "privileged-bridge.sock")
        proxy = os.path.join(self.workdir, "cockpit-superuser-proxy.py")
        shutil.copy(os.path.join(args.source, "tests", "cockpit-superuser-proxy.py"), proxy)
        os.makedirs(os.path.join(self.data_dir, "cockpit", "test-superuser"))
        with open(os.path.join(self.data_dir, "cockpit", "test-superuser", "manifest.json"), "w") as f:
            json.dump({"bridges": [{"privileged": True,
                                    "spawn": ["/usr/bin/python3", proxy, self.superuser_socket]}]}, f)
        self.bridges = None
        os.makedirs(args.screenshots, exist_ok=True)
        for old in os.listdir(args.screenshots):  # this run's only
            if old.endswith(".png"):
                os.unlink(os.path.join(args.screenshots, old))
        self.harness = None
        self.ws = []
        self.driver = None
        self.fingerprints = {}

    # ---- plumbing ----

    def start(self):
        t = time.monotonic()
        self.harness = Harness(self.args.harness, self.pki)
        log("harness ready in %.1f s, bus %s" % (time.monotonic() - t, self.harness.bus))
        self.bridges = PrivilegedBridges(self.superuser_socket, self.harness.bus)
        with open(os.path.join(self.pki, "fingerprints")) as f:
            self.fingerprints = dict(line.split() for line in f if line.strip())
        t = time.monotonic()
        options = webdriver.ChromeOptions()
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                  "--user-data-dir=" + os.path.join(self.workdir, "chromium")):
            options.add_argument(a)
        options.add_experimental_option("prefs", {"download.default_directory": self.downloads,
                                                  "download.prompt_for_download": False})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_script_timeout(WAIT)
        self.driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow",
                                                                 "downloadPath": self.downloads})
        log("chromium ready in %.1f s" % (time.monotonic() - t))

    def stop(self):
        if self.driver:
            try:
                self.driver.quit()
            except Exception:
                pass
        for ws in self.ws:
            ws.stop()
        if self.bridges:
            self.bridges.stop()
        status = 0
        if self.harness:
            status = self.harness.stop()
        if os.environ.get("SMIMED_TEST_KEEP"):
            log("kept", self.workdir)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return status

    def cockpit(self, user=None):
        ws = CockpitWs(self.harness.bus, self.data_dir, self.workdir, user)
        self.ws.append(ws)
        return ws

    def smimectl(self, *argv):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.harness.bus)
        return subprocess.run([self.args.smimectl, *argv], env=env, check=True, capture_output=True, text=True)

    def wait(self, what, condition):
        try:
            # The pages re-render lists as the daemon's signals come: an
            # element read may be gone meanwhile; look again.
            return WebDriverWait(self.driver, WAIT, ignored_exceptions=[StaleElementReferenceException]).until(
                lambda d: condition())
        except TimeoutException:
            self.screenshot("failed")
            raise AssertionError("timed out waiting for " + what)

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def click(self, css):
        """Clicks the element, found again if the page re-rendered it
        between the finding and the click (a list refreshed by a signal)."""
        self.wait("a click on " + css, lambda: self.find(css).click() or True)

    def finds(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        for _ in range(10):  # a list re-rendered under us: look again
            try:
                els = self.finds(css)
                return els[0].text if els else None
            except StaleElementReferenceException:
                continue
        return None

    def wait_text(self, css, expected):
        """Waits until the element's text contains expected."""
        return self.wait("%r in %s" % (expected, css), lambda: expected in (self.text(css) or ""))

    def wait_visible(self, css):
        return self.wait(css + " shown", lambda: self.finds(css) and self.finds(css)[0].is_displayed())

    def go(self, ws, page):
        self.driver.get(ws.url("#/" + page))
        self.wait("the page", lambda: self.driver.execute_script("return document.body.dataset.ready") == "yes")
        self.wait_visible("#page-" + page.split("/")[0])

    def tab(self, page):
        self.click('#tabs a[data-page="%s"]' % page)
        self.wait_visible("#page-" + page)

    def screenshot(self, name):
        """The whole page, not just the window."""
        path = os.path.join(self.args.screenshots, name + ".png")
        self.driver.execute_script("window.scrollTo(0, 0)")
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        log("screenshot", path)

    def upload(self, input_css, path):
        self.find(input_css).send_keys(path)

    def row_css(self, name):
        return '#cert-table tr[data-fingerprint="%s"]' % self.fingerprints[name]

    def cert_status(self, name):
        return self.text(self.row_css(name) + " td.cert-status")

    def row_fingerprints(self):
        """The certificate table's rows, in order (a re-render under us: read again)."""
        for _ in range(10):
            try:
                return [tr.get_attribute("data-fingerprint") for tr in self.finds("#cert-table tbody tr[data-fingerprint]")]
            except StaleElementReferenceException:
                continue
        raise AssertionError("the certificate table keeps changing")

    def assert_expiry_order(self):
        dates = [td.text for td in self.finds("#cert-table td.cert-expires")]
        assert dates and dates == sorted(dates), dates

    def select_status(self, status):
        Select(self.find("#cert-status-filter")).select_by_value(status)

    def record_calls(self):
        """From now on, the page's D-Bus calls (smimedApi.call: path, method, arguments) are recorded."""
        self.driver.execute_script("""
            if (!window.recordedCalls) {
                const call = smimedApi.call;
                smimedApi.call = function(path, iface, method, args, type) {
                    window.recordedCalls.push([path, method, JSON.stringify(args)]);
                    return call.apply(this, arguments);
                };
            }
            window.recordedCalls = [];
        """)

    def recorded_calls(self):
        return self.driver.execute_script("return window.recordedCalls")

    def wait_download(self, suffix, before):
        def done():
            new = [f for f in os.listdir(self.downloads) if f not in before and f.endswith(suffix)]
            return new[0] if new else None
        name = self.wait("a download *%s" % suffix, done)
        return os.path.join(self.downloads, name)

    # ---- the cases ----

    def menu(self, ws):
        """Cockpit's menu: the manifest the bridge serves names the page."""
        url = "http://127.0.0.1:%d/cockpit/@localhost/manifests.json" % ws.port
        with urllib.request.urlopen(url, timeout=WAIT) as r:
            manifests = json.load(r)
        assert manifests["smimed"]["menu"]["index"]["label"] == "S/MIME keys", manifests.get("smimed")
        log("ok: Cockpit's menu has \"S/MIME keys\"")

    def overview(self, ws):
        self.go(ws, "overview")
        self.wait_text("#overview-token-state", "ready")
        assert self.text("#overview-token-label") == "(smimed-test)", self.text("#overview-token-label")
        assert self.text("#overview-version"), "no version"
        assert self.text("#overview-enabled") == "enabled", self.text("#overview-enabled")
        self.wait_text("#overview-key-count", "1")
        assert self.text("#overview-token-help") == "", self.text("#overview-token-help")
        log("ok: overview shows the token ready")

    def token_locked(self, ws):
        """A wrong PIN: the overview says locked and what to do; fixing the
        PIN and "Reload configuration" make it ready, live."""
        self.harness.command("lock")  # smimed restarts: the page follows its new instance
        self.wait_text("#overview-token-state", "locked")
        self.wait_text("#overview-token-help", "refused the PIN")
        assert "PINFile=" in self.text("#overview-token-help"), self.text("#overview-token-help")
        self.wait_text("#overview-key-count", "0")
        self.screenshot("overview-locked")
        self.harness.command("fix-pin")
        self.click("#overview-reload")
        self.wait_text("#overview-reload-result", "Configuration reloaded.")
        self.wait_text("#overview-token-state", "ready")
        self.wait_text("#overview-key-count", "1")
        assert self.text("#overview-token-help") == "", self.text("#overview-token-help")
        log("ok: a locked token with what to do; ready again after Reload")

    def certificates(self, ws):
        self.tab("certificates")
        self.wait_text("#cert-table tbody", "The store is empty.")

        self.click("#cert-import-trust")
        self.upload("#cert-import-file", os.path.join(self.pki, "ca.pem"))
        self.click("#cert-import-button")
        self.wait_text("#cert-import-result", "Imported 1 certificate from ca.pem")
        self.wait("the CA as anchor", lambda: self.text(self.row_css("ca") + " td.cert-trust") == "anchor")

        self.click("#cert-import-trust")
        self.upload("#cert-import-file", os.path.join(self.pki, "leaves.pem"))
        self.click("#cert-import-button")
        self.wait_text("#cert-import-result", "Imported 5 certificates from leaves.pem")
        expected = {"ca": "✅ valid", "valid": "✅ valid", "expired": "❌ expired", "revoked": "✅ valid",
                    "untrusted": "❌ untrusted", "signer": "✅ valid"}
        for name, status in expected.items():
            self.wait("%s: %s" % (name, status), lambda: self.cert_status(name) == status)
        assert self.text(self.row_css("signer") + " td.cert-key") == "yes"
        assert self.text(self.row_css("valid") + " td.cert-key") == "no"
        # The reason of a status that is not valid, on hover.
        title = self.find(self.row_css("expired") + " td.cert-status").get_attribute("title")
        assert "expired" in title, title

        self.upload("#crl-import-file", os.path.join(self.pki, "crl.pem"))
        self.click("#crl-import-button")
        self.wait_text("#crl-import-result", "Stored 1 CRL")
        self.wait("revoked after the CRL", lambda: self.cert_status("revoked") == "❌ revoked")
        assert self.cert_status("valid") == "✅ valid"
        log("ok: valid, expired, untrusted, revoked by the imported CRL")

        # The summary on hover (the row's title), as mail apps show it.
        row = self.find(self.row_css("valid"))
        ActionChains(self.driver).move_to_element(row).perform()
        summary = row.get_attribute("title")
        assert "valid@example.com" in summary and "issued by smimed Test CA" in summary, summary

        # smimed's order: by expiry, soonest first.
        assert self.text("#cert-page-info") == "1–6 of 6", self.text("#cert-page-info")
        assert self.row_fingerprints()[0] == self.fingerprints["expired"], self.row_fingerprints()
        self.assert_expiry_order()

        # The filter box is an address prefix; the status selector asks smimed for one status.
        filt = self.find("#cert-filter")
        filt.send_keys("EXPIRED")  # compared case-insensitively
        self.wait("one row for the filter", lambda: self.row_fingerprints() == [self.fingerprints["expired"]])
        filt.clear()
        filt.send_keys("xpired")  # a prefix, not a substring
        self.wait_text("#cert-table tbody", "No certificate matches.")
        filt.clear()
        filt.send_keys(" ")  # an input event: the whole list again
        self.wait("every row back", lambda: len(self.row_fingerprints()) == 6)
        for status, names in (("expired", ["expired"]), ("revoked", ["revoked"]), ("untrusted", ["untrusted"])):
            self.select_status(status)
            want = [self.fingerprints[n] for n in names]
            self.wait("only %s" % status, lambda: self.row_fingerprints() == want)
            assert self.text("#cert-page-info") == "1–1 of 1", self.text("#cert-page-info")
        self.select_status("valid")
        self.wait("the valid ones", lambda: len(self.row_fingerprints()) == 3)
        assert set(self.row_fingerprints()) == {self.fingerprints[n] for n in ("ca", "valid", "signer")}
        assert {td.text for td in self.finds("#cert-table td.cert-status")} == {"✅ valid"}
        self.select_status("")
        self.wait("every row back", lambda: len(self.row_fingerprints()) == 6)

        # Details: the chain with its statuses, export.
        self.click(self.row_css("valid"))
        self.wait_visible("#cert-details")
        self.wait_text("#cert-details-title", "valid@example.com")
        self.wait("the chain", lambda: len(self.finds("#cert-details-chain li")) == 2)
        chain = [li.get_attribute("data-fingerprint") for li in self.finds("#cert-details-chain li")]
        assert chain == [self.fingerprints["valid"], self.fingerprints["ca"]], chain
        self.wait("chain statuses", lambda: all(s.text == "✅ valid" for s in self.finds("#cert-details-chain .chain-status")))
        assert "Can sign" in self.text("#cert-details-fields")
        before = set(os.listdir(self.downloads))
        self.click("#cert-export")
        pem = self.wait_download(".pem", before)
        fp = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-fingerprint", "-sha256"],
                            check=True, capture_output=True, text=True).stdout
        assert fp.strip().split("=")[1].replace(":", "").lower() == self.fingerprints["valid"], fp
        self.screenshot("certificates")
        log("ok: summary, order by expiry, address prefix and status filters, details with chain, export PEM")

        # Untrust the CA: its leaves become untrusted; trust it again.
        self.click('#cert-details-chain li[data-fingerprint="%s"] a' % self.fingerprints["ca"])
        self.wait_text("#cert-details-title", "smimed Test CA")
        self.wait_visible("#cert-untrust")
        self.click("#cert-untrust")
        self.wait_visible("#cert-trust")
        self.wait("valid@ untrusted", lambda: self.cert_status("valid") == "❌ untrusted")
        self.click("#cert-trust")
        self.wait_visible("#cert-untrust")
        self.wait("valid@ valid again", lambda: self.cert_status("valid") == "✅ valid")
        self.click("#cert-details-close")
        self.wait("details closed", lambda: not self.find("#cert-details").is_displayed())
        log("ok: untrust and trust")

    def overview_live(self, ws):
        self.tab("overview")
        self.wait_text("#overview-cert-count", "6")
        self.wait_text("#overview-expiring", "signer@example.com")
        assert "expired@" not in self.text("#overview-expiring")
        # smimed's window ([Policy] ExpiryWarningDays=, the property) and its count.
        self.wait_text("#overview-expiring-title", "within 30 days")
        assert "more" not in self.text("#overview-expiring")
        self.wait("a CRL time", lambda: "UTC" in self.text("#overview-crl"))
        self.screenshot("overview")
        # Changes made elsewhere show without a reload.
        self.smimectl("remove", self.fingerprints["untrusted"])
        self.wait_text("#overview-cert-count", "5")
        log("ok: overview counts, expiring soon, live from the daemon's signals")

    def keys(self, ws):
        self.tab("keys")
        self.wait("the token key", lambda: self.finds('#key-table tr[data-id="01"]'))
        self.wait_text('#key-table tr[data-id="01"]', "signer@example.com")

        # A wrong passphrase: the daemon's message, in place.
        self.upload("#p12-file", os.path.join(self.pki, "enroll.p12"))
        self.find("#p12-passphrase").send_keys("wrong")
        self.click("#p12-button")
        self.wait_visible("#p12-error")
        assert "passphrase" in self.text("#p12-error").lower(), self.text("#p12-error")
        assert self.find("#p12-passphrase").get_attribute("value") == ""

        with open(os.path.join(self.pki, "enroll.pass")) as f:
            passphrase = f.read()
        self.upload("#p12-file", os.path.join(self.pki, "enroll.p12"))
        self.find("#p12-passphrase").send_keys(passphrase)
        self.click("#p12-button")
        self.wait_text("#p12-result", "Enrolled key")
        assert "enroll@example.com" in self.text("#p12-result")
        assert self.find("#p12-passphrase").get_attribute("value") == ""
        self.wait("the enrolled key", lambda: any("enroll@example.com" in td.text for td in self.finds("#key-table td.key-label")))
        log("ok: PKCS#12 enrolled (a wrong passphrase refused in place)")

        # Generate a key and download its request.
        self.find("#gen-address").send_keys("generated@example.com")
        Select(self.find("#gen-type")).select_by_value("ec-p256")
        self.find("#gen-subject").send_keys("CN=Generated,O=Example")
        self.click("#gen-button")
        self.wait_visible("#gen-result")
        key_id = self.text("#gen-key-id")
        before = set(os.listdir(self.downloads))
        self.click("#gen-csr-download")
        csr = self.wait_download(".csr", before)
        out = subprocess.run(["openssl", "req", "-verify", "-noout", "-subject", "-in", csr],
                             capture_output=True, text=True)
        # OpenSSL 3.0 exits 0 even for a bad signature: look for its words.
        assert "verify OK" in out.stdout + out.stderr, out
        assert "CN = Generated" in out.stdout, out.stdout
        self.wait("the generated key", lambda: self.finds('#key-table tr[data-id="%s"]' % key_id))
        log("ok: generated key %s, its CSR downloaded and verified" % key_id)

        self.renew()

        # remove-key's guard: a short prefix is refused, the whole id removes.
        self.click('#key-table tr[data-id="%s"] button.key-remove' % key_id)
        self.wait_visible("#key-remove")
        self.find("#key-remove-confirm").send_keys(key_id[:4])
        self.click("#key-remove-button")
        self.wait_text("#key-remove-error", "a prefix needs at least 8 digits")
        assert self.finds('#key-table tr[data-id="%s"]' % key_id)
        self.find("#key-remove-confirm").clear()
        self.find("#key-remove-confirm").send_keys(key_id)
        self.click("#key-remove-button")
        self.wait("the key gone", lambda: not self.finds('#key-table tr[data-id="%s"]' % key_id))
        log("ok: remove-key guard, then removal")

        self.remove_current_key()

    def renew(self):
        """Renew signer@'s certificate: a new key, and a request with the
        certificate's subject; the old key stays."""
        keys_before = {tr.get_attribute("data-id") for tr in self.finds("#key-table tbody tr[data-id]")}
        assert "01" in keys_before, keys_before
        self.click('#key-table tr[data-id="01"] li[data-fingerprint="%s"] button.key-renew'
                   % self.fingerprints["signer"])
        self.wait_visible("#renew")
        explained = self.text("#renew")
        assert "signing as signer@example.com uses it" in explained, explained
        assert "the old key 01 stays" in explained, explained
        assert not self.find("#renew-result").is_displayed()
        self.record_calls()
        self.click("#renew-button")
        self.wait_visible("#renew-result")
        calls = [c for c in self.recorded_calls() if c[1] == "GenerateKey"]
        assert len(calls) == 1 and '"renew":{"t":"s","v":"%s"}' % self.fingerprints["signer"] in calls[0][2], calls
        new_id = self.text("#renew-key-id")
        assert new_id and new_id not in keys_before, (new_id, keys_before)
        before = set(os.listdir(self.downloads))
        self.click("#renew-csr-download")
        csr = self.wait_download(".csr", before)
        req = subprocess.run(["openssl", "req", "-verify", "-noout", "-subject", "-in", csr],
                             capture_output=True, text=True)
        assert "verify OK" in req.stdout + req.stderr, req
        cert = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", os.path.join(self.pki, "signer.pem")],
                              check=True, capture_output=True, text=True)
        subject = [line for line in req.stdout.splitlines() if line.startswith("subject=")]
        assert subject == [cert.stdout.strip()], (subject, cert.stdout)
        self.wait("the new key", lambda: self.finds('#key-table tr[data-id="%s"]' % new_id))
        assert self.finds('#key-table tr[data-id="01"]'), "the old key is gone"
        self.screenshot("keys")
        log("ok: renewed signer@'s certificate: new key %s, the request has its subject (%s), key 01 stays"
            % (new_id, cert.stdout.strip()))
        self.click("#renew-close")
        self.wait("the renew panel closed", lambda: not self.find("#renew").is_displayed())

    def remove_current_key(self):
        """The enrolled key has a current certificate: like smimectl remove-key
        without --force, the page keeps it until "Remove anyway" is ticked."""
        key_id = self.wait("the enrolled key's id", lambda: next(
            (tr.get_attribute("data-id") for tr in self.finds("#key-table tbody tr[data-id]")
             if "enroll@example.com" in tr.text), None))
        row = '#key-table tr[data-id="%s"]' % key_id
        self.click(row + " button.key-remove")
        self.wait_visible("#key-remove-guard")
        self.wait_text("#key-remove-current", "enroll@example.com")
        assert not self.find("#key-remove-force").is_selected()
        self.find("#key-remove-confirm").send_keys(key_id)
        self.click("#key-remove-button")
        self.wait_text("#key-remove-error", "only key that can decrypt mail sent to enroll@example.com")
        assert self.finds(row), "removed without Remove anyway"
        assert self.find("#key-remove").is_displayed()
        self.screenshot("keys-remove-guard")
        self.click("#key-remove-force")
        self.click("#key-remove-button")
        self.wait("the enrolled key gone", lambda: not self.finds(row))
        assert not self.find("#key-remove").is_displayed()
        log("ok: a key with a current certificate needs Remove anyway, then goes")

    def coverage(self, ws):
        self.tab("coverage")
        self.find("#cov-sender").send_keys("signer@example.com")
        self.find("#cov-recipients").send_keys("valid@example.com, expired@example.com\nrevoked@example.com nobody@example.com")
        self.click("#cov-button")
        self.wait("5 verdicts", lambda: len(self.finds("#cov-results tr.cov-row")) == 5)
        rows = {(r.get_attribute("data-what"), r.get_attribute("data-address")): r for r in self.finds("#cov-results tr.cov-row")}
        expect = {
            ("sign", "signer@example.com"): ("yes", ""),
            ("encrypt", "valid@example.com"): ("yes", ""),
            ("encrypt", "expired@example.com"): ("no", "expired"),
            ("encrypt", "revoked@example.com"): ("no", "revoked"),
            ("encrypt", "nobody@example.com"): ("no", "no-certificate"),
        }
        for k, (possible, reason) in expect.items():
            r = rows[k]
            assert (r.get_attribute("data-possible"), r.get_attribute("data-reason")) == (possible, reason), \
                (k, r.get_attribute("data-possible"), r.get_attribute("data-reason"))
            if reason:
                assert r.text.startswith("❌") and reason + ":" in r.text, r.text
            else:
                assert r.text.startswith("✅") and "issued by smimed Test CA" in r.text, r.text
        self.screenshot("coverage")
        log("ok: coverage verdicts with reasons")

    def paging(self, ws):
        """30 more certificates: pages of 25; a removal through the page."""
        self.smimectl("import", os.path.join(self.pki, "bulk.pem"))
        self.tab("certificates")
        self.wait_text("#cert-page-info", "1–25 of 36")
        assert len(self.row_fingerprints()) == 25
        assert self.find("#cert-prev").get_attribute("disabled")
        first_page = self.row_fingerprints()
        self.assert_expiry_order()
        last_expiry = self.finds("#cert-table td.cert-expires")[-1].text

        # The next page is smimed's: one ListCertificates with offset and
        # limit, the rest of each row read for the 11 rows shown only, and
        # no GetManagedObjects of the certificates.
        self.record_calls()
        self.click("#cert-next")
        self.wait_text("#cert-page-info", "26–36 of 36")
        second_page = self.row_fingerprints()
        assert len(second_page) == 11 and not set(first_page) & set(second_page), second_page
        self.assert_expiry_order()
        assert self.finds("#cert-table td.cert-expires")[0].text >= last_expiry
        calls = self.recorded_calls()
        # (A refresh for a late signal may ask the same page again.)
        lists = [json.loads(c[2]) for c in calls if c[1] == "ListCertificates"]
        assert lists and all(q == [{"offset": {"t": "t", "v": 25}, "limit": {"t": "u", "v": 25}}] for q in lists), lists
        assert not [c for c in calls if c[1] == "GetManagedObjects"], calls
        getall = [c for c in calls if c[1] == "GetAll"]
        assert len(getall) == 11 * len(lists), calls
        self.click("#cert-prev")
        self.wait_text("#cert-page-info", "1–25 of 36")
        assert self.row_fingerprints() == first_page

        # The filter starts again at the first page.
        self.click("#cert-next")
        self.wait_text("#cert-page-info", "26–36 of 36")
        self.find("#cert-filter").send_keys("bulk-2")
        self.wait_text("#cert-page-info", "1–10 of 10")
        assert all(td.text.startswith("bulk-2") for td in self.finds("#cert-table td.cert-address"))
        # Both filters at once.
        self.find("#cert-filter").clear()
        self.find("#cert-filter").send_keys("bulk-")
        self.wait_text("#cert-page-info", "1–25 of 30")
        self.select_status("expired")
        self.wait_text("#cert-page-info", "0–0 of 0")
        self.select_status("valid")
        self.wait_text("#cert-page-info", "1–25 of 30")
        self.select_status("")

        self.find("#cert-filter").clear()
        self.find("#cert-filter").send_keys("expired@")
        self.wait_text("#cert-page-info", "1–1 of 1")
        self.click(self.row_css("expired"))
        self.wait_text("#cert-details-title", "expired@example.com")
        self.click("#cert-remove")
        self.wait_text("#cert-remove", "Click again")
        assert self.finds(self.row_css("expired"))
        self.click("#cert-remove")
        self.wait("expired@ removed", lambda: not self.finds(self.row_css("expired")))
        self.wait_text("#cert-page-info", "0–0 of 0")
        self.find("#cert-filter").clear()
        self.find("#cert-filter").send_keys(" ")
        self.wait_text("#cert-page-info", "1–25 of 35")
        log("ok: paging by smimed, address prefix and status filters, removal")

    def denied(self):
        ws = self.cockpit(TEST_USER)
        self.go(ws, "certificates")
        self.wait("the list as %s" % TEST_USER, lambda: self.text("#cert-page-info") == "1–25 of 35")
        # Cockpit's administrative access is off for this session: the page says what it means.
        self.wait_visible("#admin-hint")
        self.upload("#cert-import-file", os.path.join(self.pki, "ca.pem"))
        self.click("#cert-import-button")
        self.wait_visible("#cert-import-error")
        self.wait_text("#cert-import-error", "You are not allowed")
        self.screenshot("denied")
        log("ok: a denied import says so, as %s" % TEST_USER)

        # Administrative access on (what Cockpit's top bar switch does): the
        # page reconnects through the privileged bridge and the import passes;
        # off again, and it is refused again.
        self.superuser("Start", ["python3"])  # the bridge is named after its program
        self.wait("the hint gone", lambda: not self.find("#admin-hint").is_displayed())
        self.upload("#cert-import-file", os.path.join(self.pki, "ca.pem"))
        self.click("#cert-import-button")
        self.wait_text("#cert-import-result", "Imported 1 certificate from ca.pem")
        assert not self.find("#cert-import-error").is_displayed()
        self.superuser("Stop", [])
        self.wait_visible("#admin-hint")
        self.upload("#cert-import-file", os.path.join(self.pki, "ca.pem"))
        self.click("#cert-import-button")
        self.wait_text("#cert-import-error", "You are not allowed")
        log("ok: Cockpit's administrative access switch: allowed when on, refused when off")

    def superuser(self, method, args):
        """Calls cockpit.Superuser on the bridge's internal bus, as the shell's switch does."""
        result = self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            cockpit.dbus(null, { bus: "internal" }).call("/superuser", "cockpit.Superuser", arguments[0], arguments[1])
                .then(() => done("ok"), err => done("error: " + (err.message || err.problem || err)));
        """, method, args)
        assert result == "ok", "cockpit.Superuser.%s: %s" % (method, result)

    def run(self):
        self.start()
        ws = self.cockpit()
        t = time.monotonic()
        self.menu(ws)
        self.overview(ws)
        self.token_locked(ws)
        self.certificates(ws)
        self.overview_live(ws)
        self.keys(ws)
        self.coverage(ws)
        self.paging(ws)
        self.denied()
        log("browser cases took %.1f s" % (time.monotonic() - t))
        # No script failed on the way (an exception in the page's code is SEVERE).
        errors = [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, "errors in the browser console: %s" % errors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--harness", required=True)
    parser.add_argument("--smimectl", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--screenshots", required=True)
    args = parser.parse_args()

    if os.geteuid() != 0:
        sys.exit("test-cockpit: runs as root (the harness adds users and runs polkitd)")
    for program in (COCKPIT_WS, CHROMEDRIVER, "/usr/bin/chromium"):
        if not os.access(program, os.X_OK):
            sys.exit("test-cockpit: %s is missing: run tools/install-deps" % program)

    test = Test(args)
    start = time.monotonic()
    try:
        test.run()
    except Exception:
        traceback.print_exc()
        for ws in test.ws:
            try:
                with open(ws.log_path) as f:
                    sys.stderr.write("--- %s\n%s" % (ws.log_path, f.read()[-4000:]))
            except OSError:
                pass
        if test.driver:
            try:
                for entry in test.driver.get_log("browser"):
                    sys.stderr.write("browser: %s\n" % entry)
            except Exception:
                pass
        test.stop()
        return 1
    status = test.stop()
    if status != 0:
        log("cockpit-harness exited with status %d (smimed's exit, or a leak)" % status)
        return 1
    log("passed in %.1f s" % (time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
