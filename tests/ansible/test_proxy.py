"""The optional nginx reverse proxy (role emtp_proxy), converged into the Debian 12 container.

One container for the module (the tests run in order and build on each other): site.yml with
emtp_proxy_enabled and a self-signed pair generated here with openssl and handed over through
emtp_proxy_tls_cert / emtp_proxy_tls_key (non-default ports 8443/8080, to exercise them);
nginx serves the login page over HTTPS, redirects HTTP, sends HSTS; the app listens only on
127.0.0.1:8051, marks its session cookie Secure and, trusting one hop, audits the peer nginx saw
(not a spoofed X-Forwarded-For); a second run changes nothing; emtp_proxy_enabled: false puts
the app back on 0.0.0.0:8051 and takes nginx down; turned on again with emtp_proxy_tls_self_signed
and no pair, the role generates one with openssl on the server.

Same machinery as test_container.py (container.py, its cached rootfs and wheelhouse, and its
Ansible runner); the app wheel is built from git HEAD. About 2-3 minutes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import container as ct  # noqa: E402
from test_container import ADMIN_PASSWORD, HOME, REPO, Ansible, _copy_repo, recap, tail  # noqa: E402

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(900)]

HTTPS_PORT = 8443
HTTP_PORT = 8080
APP_PORT = 8051
SERVER_NAME = "emtp-ci.local"
TOML = f"{HOME}/config/visualizador-emtp.toml"
SITE = "/etc/nginx/conf.d/visualizador-emtp.conf"
# The client's own address inside the container (any of 127/8 is local on lo) and a forged
# X-Forwarded-For value: the audit must show the first, nginx connects to the app from 127.0.0.1.
CLIENT_IP = "127.0.0.2"
SPOOFED_IP = "127.0.0.66"


def _self_signed(work: Path) -> tuple[str, str]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                    "-subj", f"/CN={SERVER_NAME}", "-addext", f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1",
                    "-keyout", str(work / "tls.key"), "-out", str(work / "tls.crt")],
                   check=True, capture_output=True)
    cert, key = (work / "tls.crt").read_text(), (work / "tls.key").read_text()
    (work / "tls.key").unlink()
    return cert, key


@pytest.fixture(scope="module")
def env():
    work = Path(tempfile.mkdtemp(prefix="emtp-proxy-", dir="/var/tmp"))
    artifacts = REPO / "test-artifacts" / "ansible-proxy"
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    t0 = time.monotonic()
    checkout = _copy_repo(work / "src")
    wheel = ct.build_wheel(checkout, work / "wheels")
    ct.ensure_wheelhouse(wheel)
    ct.log(f"{wheel.name} ready in {time.monotonic() - t0:.0f} s")
    cert, key = _self_signed(work)
    proxy_vars = work / "proxy.yml"
    proxy_vars.write_text(yaml.safe_dump({
        # the wheel built above (not a second build by the role) and no demo data: shorter converges
        "emtp_wheel": str(wheel),
        "emtp_demo_data": False,
        "emtp_proxy_enabled": True,
        "emtp_proxy_server_name": SERVER_NAME,
        "emtp_proxy_https_port": HTTPS_PORT,
        "emtp_proxy_http_port": HTTP_PORT,
        "emtp_proxy_tls_cert": cert,
        "emtp_proxy_tls_key": key,
    }))
    proxy_vars.chmod(0o600)
    with ct.booted(work, artifacts) as box:
        yield {"box": box, "ansible": Ansible(work, box.pid, checkout), "vars": proxy_vars, "cert": cert, "key": key}


def site(env, label: str, *extra: str) -> subprocess.CompletedProcess:
    res = env["ansible"].play("site.yml", "-e", f"@{env['vars']}", *extra, label=label)
    assert res.returncode == 0, tail(res)
    # no_log: the private key never reaches Ansible's output
    body = "".join(env["key"].strip().splitlines()[1:-1])
    assert body[:40] not in res.stdout + res.stderr
    return res


def curl(box, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """curl inside the container (its own loopback), -k: the certificate is self-signed."""
    return box.exec(["curl", "-sS", "-k", "--max-time", "15", *args], check=check)


def fetch(box, url: str, *args: str) -> tuple[int, dict[str, list[str]], str]:
    """(status, headers by lower-case name, body) of one request, no redirects followed."""
    res = curl(box, "-D", "/dev/stderr", "-o", "/dev/stdout", *args, url)
    status, headers = 0, {}
    for line in res.stderr.splitlines():
        if line.startswith("HTTP/"):
            status, headers = int(line.split()[1]), {}
        elif ":" in line:
            name, value = line.split(":", 1)
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers, res.stdout


def listeners(box, port: int) -> set[str]:
    out = box.exec(["ss", "-Hltn", f"sport = :{port}"]).stdout
    return {line.split()[3] for line in out.splitlines() if line.strip()}


def wait_listeners(box, port: int, expected: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (got := listeners(box, port)) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert got == expected, got


def audit_events(box) -> list[dict]:
    return [json.loads(line) for line in box.path(f"{HOME}/logs/audit.jsonl").read_text().splitlines() if line.strip()]


def login_form(box, jar: str, *args: str) -> str:
    """GET /login through nginx into a cookie jar; returns the form's CSRF token."""
    status, _, body = fetch(box, f"https://127.0.0.1:{HTTPS_PORT}/login", "-c", jar, "-b", jar, *args)
    assert status == 200, body[:500]
    m = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert m, body[:2000]
    return m.group(1)


# ---------------------------------------------------------------- the tests, in order


def test_site_converges_with_proxy(env):
    res = site(env, "proxy-1")
    r = recap(res.stdout)
    assert r["failed"] == 0 and r["changed"] > 0
    box = env["box"]
    assert box.exec(["systemctl", "is-active", "nginx"]).stdout.strip() == "active"
    assert box.exec(["systemctl", "is-enabled", "nginx"]).stdout.strip() == "enabled"
    assert box.exec(["nginx", "-t", "-q"], check=False).returncode == 0
    assert box.sh("test -e /etc/nginx/sites-enabled/default", check=False).returncode != 0
    # the pair from the variables, the key readable only by root
    assert box.path("/etc/ssl/certs/visualizador-emtp.crt").read_text().strip() == env["cert"].strip()
    assert box.path("/etc/ssl/private/visualizador-emtp.key").read_text().strip() == env["key"].strip()
    assert box.exec(["stat", "-c", "%U:%G %a", "/etc/ssl/private/visualizador-emtp.key"]).stdout.strip() == "root:root 600"
    # the app's configuration behind the proxy
    toml = box.path(TOML).read_text()
    assert re.search(r'(?m)^bind = "127\.0\.0\.1:8051"$', toml), toml
    assert re.search(r"(?m)^trusted_proxies = 1$", toml), toml
    assert re.search(r"(?m)^cookie_secure = true$", toml), toml


def test_app_listens_only_on_loopback(env):
    box = env["box"]
    wait_listeners(box, APP_PORT, {f"127.0.0.1:{APP_PORT}"})
    assert {f"0.0.0.0:{HTTPS_PORT}", f"0.0.0.0:{HTTP_PORT}"} <= listeners(box, HTTPS_PORT) | listeners(box, HTTP_PORT)


def test_https_serves_login_page_with_hsts(env):
    status, headers, body = fetch(env["box"], f"https://127.0.0.1:{HTTPS_PORT}/login")
    assert status == 200 and "<form" in body.lower(), body[:500]
    assert headers["strict-transport-security"] == ["max-age=31536000"], headers
    # the app's own headers come through once (nginx does not duplicate them)
    assert headers["x-content-type-options"] == ["nosniff"], headers
    assert headers["x-frame-options"] == ["DENY"], headers
    assert "content-security-policy" in headers
    assert headers["server"] == ["nginx"], headers  # server_tokens off
    # the certificate served is the one handed over in emtp_proxy_tls_cert
    served = env["box"].sh(f"openssl s_client -connect 127.0.0.1:{HTTPS_PORT} -servername {SERVER_NAME} "
                           "</dev/null 2>/dev/null | openssl x509 -noout -subject").stdout
    assert SERVER_NAME in served, served


def test_http_redirects_to_https(env):
    status, headers, _ = fetch(env["box"], f"http://127.0.0.1:{HTTP_PORT}/login?next=/cuenta")
    assert status == 301, headers
    assert headers["location"] == [f"https://127.0.0.1:{HTTPS_PORT}/login?next=/cuenta"], headers


def test_login_through_proxy_sets_secure_cookie(env):
    box = env["box"]
    jar = "/tmp/ci-admin.jar"
    token = login_form(box, jar)
    status, headers, body = fetch(box, f"https://127.0.0.1:{HTTPS_PORT}/login", "-c", jar, "-b", jar,
                                  "--data-urlencode", "username=admin",
                                  "--data-urlencode", f"password={ADMIN_PASSWORD}",
                                  "--data-urlencode", f"csrf_token={token}")
    assert status == 302, (headers, body[:500])
    cookies = [c for c in headers.get("set-cookie", []) if c.startswith("emtp_session=")]
    assert cookies, headers
    attrs = {a.strip().lower() for a in cookies[-1].split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= attrs, cookies
    # redirects stay on HTTPS (X-Forwarded-Proto is honoured): relative or https://
    assert not headers["location"][0].startswith("http:"), headers
    # the session works through the proxy
    status, _, body = fetch(box, f"https://127.0.0.1:{HTTPS_PORT}/cuenta", "-b", jar)
    assert status == 200 and "admin" in body, body[:500]


def test_audit_records_the_peer_nginx_saw_not_a_spoofed_header(env):
    box = env["box"]
    jar = "/tmp/ci-xff.jar"
    source = ["--interface", CLIENT_IP, "-H", f"X-Forwarded-For: {SPOOFED_IP}"]
    token = login_form(box, jar, *source)
    status, _, _ = fetch(box, f"https://127.0.0.1:{HTTPS_PORT}/login", "-c", jar, "-b", jar, *source,
                         "--data-urlencode", "username=ci-proxy-xff",
                         "--data-urlencode", "password=incorrecta",
                         "--data-urlencode", f"csrf_token={token}")
    assert status == 401
    failed = [e for e in audit_events(box) if e["event"] == "login" and e["target"] == "ci-proxy-xff"]
    assert len(failed) == 1 and failed[0]["success"] is False, failed
    # nginx connects to the app from 127.0.0.1: CLIENT_IP can only come from X-Forwarded-For,
    # and the forged value before it is ignored (one trusted hop = the last value, nginx's)
    assert failed[0]["ip"] == CLIENT_IP, failed
    access = box.path("/var/log/nginx/visualizador-emtp.access.log").read_text()
    assert re.search(rf"(?m)^{re.escape(CLIENT_IP)} .*\"POST /login ", access), access[-2000:]


def test_second_converge_changes_nothing(env):
    res = site(env, "proxy-2")
    assert recap(res.stdout)["changed"] == 0, tail(res, 12000)


def test_proxy_off_restores_direct_app(env):
    box = env["box"]
    res = site(env, "proxy-off", "-e", "emtp_proxy_enabled=false")
    assert recap(res.stdout)["changed"] > 0
    assert box.sh(f"test -e {SITE}", check=False).returncode != 0
    assert box.exec(["systemctl", "is-active", "nginx"], check=False).stdout.strip() == "inactive"
    assert box.exec(["systemctl", "is-enabled", "nginx"], check=False).stdout.strip() == "disabled"
    toml = box.path(TOML).read_text()
    assert re.search(r'(?m)^bind = "0\.0\.0\.0:8051"$', toml), toml
    assert "trusted_proxies" not in toml and re.search(r"(?m)^cookie_secure = false$", toml), toml
    wait_listeners(box, APP_PORT, {f"0.0.0.0:{APP_PORT}"})
    assert not listeners(box, HTTPS_PORT) and not listeners(box, HTTP_PORT)
    status, headers, body = fetch(box, f"http://127.0.0.1:{APP_PORT}/login")
    assert status == 200 and "<form" in body.lower()
    assert "strict-transport-security" not in headers
    assert curl(box, f"https://127.0.0.1:{HTTPS_PORT}/login", check=False).returncode != 0


def test_self_signed_pair_generated_when_asked(env):
    """emtp_proxy_tls_self_signed: no pair in the variables and none on disk -> openssl on the server."""
    box = env["box"]
    cert, key = "/etc/ssl/certs/ci-autofirmado.crt", "/etc/ssl/private/ci-autofirmado.key"
    res = site(env, "proxy-self-signed", "-e", json.dumps({
        "emtp_proxy_tls_cert": "", "emtp_proxy_tls_key": "", "emtp_proxy_tls_self_signed": True,
        "emtp_proxy_tls_cert_path": cert, "emtp_proxy_tls_key_path": key}))
    assert recap(res.stdout)["changed"] > 0
    assert box.exec(["stat", "-c", "%U:%G %a", key]).stdout.strip() == "root:root 600"
    assert box.exec(["systemctl", "is-active", "nginx"]).stdout.strip() == "active"
    wait_listeners(box, APP_PORT, {f"127.0.0.1:{APP_PORT}"})
    status, headers, body = fetch(box, f"https://127.0.0.1:{HTTPS_PORT}/login")
    assert status == 200 and "<form" in body.lower() and "strict-transport-security" in headers
    served = box.sh(f"openssl s_client -connect 127.0.0.1:{HTTPS_PORT} </dev/null 2>/dev/null "
                    "| openssl x509 -noout -fingerprint -subject -ext subjectAltName").stdout
    assert f"CN = {SERVER_NAME}" in served and f"DNS:{SERVER_NAME}" in served, served
    on_disk = box.exec(["openssl", "x509", "-noout", "-fingerprint", "-in", cert]).stdout.strip()
    assert on_disk and on_disk in served, (on_disk, served)
