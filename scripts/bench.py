"""keybroker benchmark driver: starts every server itself on loopback, measures with oha, writes
target/bench/results.json. Ratios compare figures from this same run only."""
import json, os, re, shutil, signal, socket, ssl, subprocess, sys, tempfile, time

SECS = int(os.environ.get("BENCH_SECONDS", "5"))
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "target", "bench")
KB = os.path.join(ROOT, "target", "release", "keybroker")
LITE = os.path.join(ROOT, "target", "release", "keybroker-lite")
WORK = tempfile.mkdtemp(prefix="keybroker-bench-")
results = {"machine": {"cores": os.cpu_count(), "seconds_per_run": SECS}, "runs": {}, "ratios": {}, "footprint": {}, "scaling": {}}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.01)
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


def oha(port, path, body, conns, keepalive=True, n=None, secs=None):
    d = DEMO
    args = ["oha", "--no-tui", "--output-format", "json", "-c", str(conns), "-m", "POST", "-T", "application/json",
            "-d", body, "--cacert", f"{d}/ca.crt", "--cert", f"{d}/backend.crt", "--key", f"{d}/backend.key"]
    args += ["-n", str(n)] if n else ["-z", f"{secs or SECS}s"]
    if not keepalive:
        args.append("--disable-keepalive")
    args.append(f"https://localhost:{port}{path}")
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


def start(cmd, port, **kw):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, **kw)
    if not wait_port(port):
        raise SystemExit(f"{cmd[0]} did not start")
    return p


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)
    except Exception:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# A demo site: certificates, PKCS12 keystore, soft master key.
DEMO = os.path.join(WORK, "site")
subprocess.run([KB, "demo", "--dir", DEMO, "--port", "0", "--self-test"], check=True, capture_output=True)
with open(f"{DEMO}/kms.properties") as f:
    base_props = f.read()


def keybroker(binary, extra=""):
    port, admin = free_port(), free_port()
    props = re.sub(r"keybroker\.listen=.*", f"keybroker.listen=127.0.0.1:{port}", base_props)
    props = re.sub(r"keybroker\.admin\.listen=.*", f"keybroker.admin.listen=127.0.0.1:{admin}", props)
    props = props.replace("keybroker.audit.file=audit.log", "") + extra
    path = os.path.join(DEMO, f"bench-{port}.properties")
    with open(path, "w") as f:
        f.write(props)
    t0 = time.time()
    p = subprocess.Popen([binary, "serve", "--config", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ready = None
    while time.time() - t0 < 10:
        try:
            s = socket.create_connection(("127.0.0.1", admin), 0.2)
            s.sendall(b"GET /readyz HTTP/1.1\r\nconnection: close\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                ready = time.time() - t0
                s.close()
                break
            s.close()
        except OSError:
            time.sleep(0.002)
    return p, port, ready


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
    location / {{ default_type application/json; return 200 '{{"plaintext":"aGVsbG8ga2V5YnJva2Vy"}}'; }}
  }}
}}
""")
    return start(["nginx", "-c", conf, "-p", WORK, "-g", "daemon off;"], port), port


def token(port):
    ctx = ssl.create_default_context(cafile=f"{DEMO}/ca.crt")
    ctx.load_cert_chain(f"{DEMO}/backend.crt", f"{DEMO}/backend.key")
    import http.client
    c = http.client.HTTPSConnection("localhost", port, context=ctx)
    c.request("POST", "/v1/keys/default/encrypt", body=json.dumps({"plaintext": "aGVsbG8ga2V5YnJva2Vy"}), headers={"content-type": "application/json"})
    return json.loads(c.getresponse().read())["ciphertext"]


def bench_server(name, proc, port, binary):
    ct = token(port)
    dec = json.dumps({"ciphertext": ct})
    runs = {}
    for c in (1, 16, 64):
        r = oha(port, "/v1/keys/default/decrypt", dec, c)
        if c == 64:
            r["rss_kib_under_load"] = rss_kib(proc.pid)
        runs[f"decrypt_c{c}"] = r
    runs["encrypt_c16"] = oha(port, "/v1/keys/default/encrypt", json.dumps({"plaintext": "aGVsbG8ga2V5YnJva2Vy"}), 16)
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
        proc, port, _ = keybroker(binary)
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


try:
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

    shells = [("keybroker", KB)] + ([("keybroker-lite", LITE)] if os.path.exists(LITE) else [])
    for name, binary in shells:
        proc, port, ready = keybroker(binary)
        time.sleep(0.3)
        results["footprint"][name] = {
            "rss_kib_idle": rss_kib(proc.pid),
            "exec_to_ready_ms": round(ready * 1000, 1) if ready else None,
            "stripped_binary_bytes": stripped_size(binary),
        }
        try:
            bench_server(name, proc, port, binary)
        except SystemExit as e:
            results["runs"][name] = {"error": str(e)}
        stop(proc)
        results["footprint"][name]["rss_kib_under_load"] = results["runs"].get(name, {}).get("decrypt_c64", {}).get("rss_kib_under_load")
        # The local decrypt cache: a hit costs no backend call.
        proc, port, _ = keybroker(binary, "kms.cache.type=local\n")
        ct = token(port)
        results["runs"][name]["decrypt_c16_cache_local"] = oha(port, "/v1/keys/default/decrypt", json.dumps({"ciphertext": ct}), 16)
        stop(proc)
        scaling(binary, name)

    ceil = results["runs"]["nginx"]
    for name, _ in shells:
        r = results["runs"].get(name, {})
        for k in ("decrypt_c1", "decrypt_c16", "decrypt_c64", "decrypt_handshake_per_request_c16"):
            if k in r and ceil[k]["rps"]:
                results["ratios"][f"{name}/{k}_vs_nginx"] = round(r[k]["rps"] / ceil[k]["rps"], 3)
        if "batch_1000_single_calls_s" in r:
            results["ratios"][f"{name}/batch_speedup"] = round(r["batch_1000_single_calls_s"] / max(r["batch_1000_decrypts_one_call_s"], 1e-9), 1)
finally:
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    shutil.rmtree(WORK, ignore_errors=True)

print(f"{'server / run':<52} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
for server, runs in results["runs"].items():
    for run, r in runs.items():
        if isinstance(r, dict) and "rps" in r:
            print(f"{server + ' ' + run:<52} {r['rps']:>10} {r['p50_ms']:>8} {r['p99_ms']:>8}")
print("\nratios:", json.dumps(results["ratios"], indent=1))
print("footprint:", json.dumps(results["footprint"], indent=1))
print("scaling:", json.dumps(results["scaling"], indent=1))
print(f"\nwrote {os.path.join(OUT, 'results.json')}")
