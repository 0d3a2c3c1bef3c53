#!/usr/bin/env python3
"""Benchmark harness of auth-service.

Builds and starts the release binary (SQLite by default, `--db postgres` against the local
PostgreSQL), seeds users and tokens over HTTP, measures the baselines (raw Argon2id, raw JWT
verification, raw refresh-rotation transactions, the /health ceiling) and every scenario in the
same run, samples the server's RSS from /proc, stops the server, and writes
`bench/results/<date>-<backend>.json` and `.md`. Closed-loop ceilings use wrk (Lua scripts in
bench/lua); fixed-rate latency runs use autocannon (bench/fixed_rate.mjs), or oha with
`--fixed-rate-tool oha`.

    python3 bench/run.py                  # SQLite, 10 s per scenario
    python3 bench/run.py --db postgres    # PostgreSQL at $BENCH_POSTGRES_URL
    python3 bench/run.py --smoke          # a second or two per scenario (CI: checks it runs,
                                          # every request succeeds and the service exits 0)
    python3 bench/run.py --peers all      # also the Python services in ../shared/peers
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
PASSWORD = "correct horse battery"

TARGETS = {
    "login": "logins/s >= 90% of raw Argon2id verifications/s (all cores)",
    "refresh": "refreshes/s >= 75% of raw rotation transactions/s of the same store",
    "verify": "requests/s >= 80% of /health requests/s",
    "validate": "requests/s >= 80% of /health requests/s",
    "jwks": "requests/s >= 80% of /health requests/s",
    "mixed": "verify p99 under a login flood <= 2x verify p99 alone; excess logins shed with 503",
    "idle_rss": "idle RSS <= 25 MB",
    "login_rss": "peak RSS during login saturation <= 64 MB",
}


# Scenarios every answer of which must be a success: a refusal (a 401 for an expired token, a
# 500 for a broken store) costs less than the work the scenario measures, so a run that got
# them measured the wrong thing. The login flood of the mixed scenario is shed with 503 by
# design (its verdict checks that); the verify requests under it must succeed.
MUST_SUCCEED = ("health", "jwks", "verify", "validate", "refresh", "login", "signup")


# A ratio gets no verdict when the hypervisor stole more than this many percentage points more
# of the CPU during one of its sides than during the other.
STEAL_GAP = 3.0


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], env: dict | None = None, cwd: Path | None = None, timeout: float = 3600) -> str:
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout


# ---------------------------------------------------------------- the server under test


class Server:
    """The release binary, started with its own database; its address is read from its log."""

    def __init__(self, database_url: str, extra_env: dict[str, str], log_path: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "JWT_", "DATABASE_", "REDIS_"))}
        env.update(
            {
                "DATABASE_URL": database_url,
                "PORT": "0",
                # The load comes from one address and logs in, signs up and refreshes thousands
                # of times a second: rate limits would measure the limiter's 429s, not the service.
                **{f"AUTH_RATE_{limit}": "off" for limit in (
                    "LOGIN_IP", "LOGIN_ACCOUNT", "SIGNUP_IP", "REFRESH_IP", "RESET_ACCOUNT", "RESET_IP")},
                # Logging as deployed: the default filter and access log (`errors`), JSON lines.
                "LOG_FORMAT": "json",
                # Stopped with SIGTERM between scenarios: no load balancer to tell, so no delay.
                "AUTH_SHUTDOWN_DELAY_SECONDS": "0",
            }
        )
        env.update(extra_env)
        # The log goes to a file, as under a log driver: a reader of a pipe in this harness
        # would be woken by every line and take CPU from the service it measures.
        self.log_path = log_path
        self.log = open(log_path, "a", encoding="utf-8")
        start = self.log.tell()
        self.proc = subprocess.Popen(
            [str(ROOT / "target/release/auth-service")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.url = None
        deadline = time.time() + 60
        with open(log_path, encoding="utf-8") as f:
            f.seek(start)
            while time.time() < deadline and self.proc.poll() is None:
                line = f.readline()
                if not line:
                    time.sleep(0.02)
                    continue
                m = re.search(r"listening on (http://[0-9.:]+)", line)
                if m:
                    self.url = m.group(1)
                    break
        if not self.url:
            raise RuntimeError(f"the service did not start (its log: {log_path})")

    def rss_kb(self) -> int:
        return _status_kb(self.proc.pid, "VmRSS")

    def stop(self) -> int | None:
        """SIGTERM, then the exit code (negative: killed by that signal; None: still running 30 s
        later, and killed)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.log.close()


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class RssPeak:
    """Samples a process's RSS every 20 ms while a scenario runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, _status_kb(self.pid, "VmRSS"))
            except OSError:
                return
            time.sleep(0.02)

    def __enter__(self) -> "RssPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- HTTP helpers for seeding


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else {})
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else {})


def parallel(fn, items, workers: int = 8) -> list:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def seed(base: str, users: int, chains: int, verify_tokens: int, run_id: str, work: Path) -> dict[str, Path]:
    """Users for login, refresh chains for refresh, and distinct access tokens for verify."""
    emails = [f"user-{run_id}-{i}@example.com" for i in range(users)]

    def signup(email: str) -> None:
        status, body = http("POST", f"{base}/auth/signup", {"email": email, "password": PASSWORD})
        if status != 201:
            raise RuntimeError(f"signup failed: {status} {body}")

    def login(email: str) -> dict:
        status, body = http("POST", f"{base}/auth/login", {"email": email, "password": PASSWORD})
        if status != 200:
            raise RuntimeError(f"login failed: {status} {body}")
        return body

    t = time.time()
    parallel(signup, emails)
    sessions = parallel(login, [emails[i % users] for i in range(chains + 100)])
    refresh_chains = [s["refresh_token"] for s in sessions[:chains]]
    # Distinct valid access tokens without a password hash each: every refresh of a session
    # issues a new access token, and earlier ones stay valid until they expire.
    sources = [s["refresh_token"] for s in sessions[chains:]]
    per_source = -(-verify_tokens // len(sources))

    def mint(refresh: str) -> list[str]:
        out = []
        for _ in range(per_source):
            status, body = http("POST", f"{base}/auth/refresh", {"refresh_token": refresh})
            if status != 200:
                raise RuntimeError(f"refresh failed: {status} {body}")
            refresh = body["refresh_token"]
            out.append(body["access_token"])
        return out

    tokens = [tok for batch in parallel(mint, sources) for tok in batch][:verify_tokens]
    files = {"users": work / "users.txt", "chains": work / "chains.txt", "tokens": work / "tokens.txt"}
    files["users"].write_text("\n".join(emails) + "\n")
    files["chains"].write_text("\n".join(refresh_chains) + "\n")
    files["tokens"].write_text("\n".join(tokens) + "\n")
    log(f"seeded {users} users, {chains} refresh chains, {len(set(tokens))} distinct access tokens in {time.time() - t:.1f}s")
    return files


def warm(base: str, tokens: Path) -> None:
    """Sends each token to /auth/verify once; every one must be accepted."""

    def check(token: str) -> None:
        status, body = http("GET", f"{base}/auth/verify", token=token)
        if status != 200:
            raise RuntimeError(f"a seeded token was refused: {status} {body}")

    parallel(check, tokens.read_text().split())


# ---------------------------------------------------------------- load generators


# The load generator shares the cores with the server. As an ordinary task, each of its threads
# woken by a response preempts the server in the middle of a request (some 0.1-0.2 involuntary
# context switches per request, four times more for /auth/verify than for /health, measured on
# a 2-core VM), so a ratio would partly measure the scheduler. SCHED_BATCH (`chrt --batch 0`)
# keeps its full share of CPU but never preempts on wake-up: about 0.03 switches per request for
# every scenario. Closed loops only: the fixed-rate latency runs keep a prompt load generator.
BATCH = ["chrt", "--batch", "0"] if shutil.which("chrt") else []


def cpu_jiffies() -> tuple[int, int]:
    """CPU time of all cores so far, in jiffies: (total, stolen by the hypervisor)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]  # user .. steal
    return sum(fields), fields[7]


def stolen(measure):
    """Runs `measure()` and adds `steal_pct` to its result: the share of the machine's CPU time
    the hypervisor gave to other guests meanwhile. On a shared VM it is what moves the figures
    between runs; a ratio is fair only when its two sides lost about the same share."""
    total0, steal0 = cpu_jiffies()
    r = measure()
    total1, steal1 = cpu_jiffies()
    r["steal_pct"] = 100 * (steal1 - steal0) / max(1, total1 - total0)
    return r


def wrk(url: str, script: str, seconds: float, threads: int, connections: int, env: dict[str, str]) -> dict:
    return stolen(lambda: _wrk(url, script, seconds, threads, connections, env))


def _wrk(url: str, script: str, seconds: float, threads: int, connections: int, env: dict[str, str]) -> dict:
    full_env = dict(os.environ, BENCH_LUA_DIR=str(LUA), BENCH_THREADS=str(threads), **env)
    out = run(
        BATCH + ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                 "--latency", "--timeout", "10s", "-s", str(LUA / script), url],
        env=full_env,
    )
    line = next(l for l in out.splitlines() if l.startswith("WRK_JSON "))
    r = json.loads(line[len("WRK_JSON "):])
    secs = r["duration_us"] / 1e6
    ok = sum(n for code, n in r["statuses"].items() if code.startswith("2"))
    return {
        "mode": "closed-loop",
        "tool": f"{' '.join(BATCH + [''])}wrk -t{threads} -c{connections} -d{max(1, round(seconds))}s -s bench/lua/{script}",
        "requests": r["requests"],
        "per_second": r["requests"] / secs,
        "ok_per_second": ok / secs,
        "p50_ms": r["p50_us"] / 1000, "p90_ms": r["p90_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000, "max_ms": r["max_us"] / 1000,
        "statuses": r["statuses"], "socket_errors": r["errors"], "seconds": secs,
    }


def merge_runs(runs: list[dict]) -> dict:
    """Several closed-loop runs of one scenario as one: rates over the summed time, statuses
    summed, the median p50 and p90 and the worst p99 and max of the runs."""
    if len(runs) == 1:
        return runs[0]
    secs = sum(r["seconds"] for r in runs)
    statuses: dict[str, int] = {}
    for r in runs:
        for code, n in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    errors = {k: sum(r["socket_errors"][k] for r in runs) for k in runs[0]["socket_errors"]}

    def median(key: str) -> float:
        return sorted(r[key] for r in runs)[len(runs) // 2]

    return {
        "mode": "closed-loop",
        "tool": f"{len(runs)} x {runs[0]['tool']}",
        "requests": sum(r["requests"] for r in runs),
        "per_second": sum(r["requests"] for r in runs) / secs,
        "ok_per_second": sum(r["ok_per_second"] * r["seconds"] for r in runs) / secs,
        "p50_ms": median("p50_ms"), "p90_ms": median("p90_ms"),
        "p99_ms": max(r["p99_ms"] for r in runs), "max_ms": max(r["max_ms"] for r in runs),
        "statuses": statuses, "socket_errors": errors, "seconds": secs,
        "steal_pct": sum(r.get("steal_pct", 0) * r["seconds"] for r in runs) / secs,
        "runs": runs,
    }


def fixed_rate(url: str, path: str, rate: int, seconds: float, tokens: Path | None = None, method: str = "GET",
               tool: str = "autocannon") -> dict:
    secs = max(1, round(seconds))
    if tool == "oha":
        return _fixed_rate_oha(url, path, rate, secs, tokens, method)
    cmd = ["node", str(BENCH / "fixed_rate.mjs"), url, path, str(rate), str(secs)]
    if tokens:
        cmd += [str(tokens), method]
    out = run(cmd, cwd=BENCH)
    line = next(l for l in out.splitlines() if l.startswith("FIXED_JSON "))
    r = json.loads(line[len("FIXED_JSON "):])
    r["mode"] = "fixed-rate"
    r["tool"] = f"autocannon --overallRate {rate} -c 32 -d {secs} {method} {path}"
    return r


def _fixed_rate_oha(url: str, path: str, rate: int, secs: int, tokens: Path | None, method: str) -> dict:
    """The same fixed-rate run with oha (`cargo install oha --locked`): latencies in
    microseconds rather than autocannon's whole milliseconds, corrected for coordinated
    omission. oha sends one request over and over, so it carries the first token of the file
    (a cache hit like any other after the warm-up)."""
    args = ["-q", str(rate), "-z", f"{secs}s", "-c", "32", "--latency-correction", "-m", method]
    if tokens:
        token = tokens.read_text().split()[0]
        if method == "GET":
            args += ["-H", f"Authorization: Bearer {token}"]
        else:
            args += ["-T", "application/json", "-d", json.dumps({"token": token})]
    out = run(["oha", "--no-tui", "--output-format", "json"] + args + [url + path])
    j = json.loads(out)
    p, summary = j["latencyPercentiles"], j["summary"]
    statuses = j.get("statusCodeDistribution", {})
    return {
        "requests": sum(statuses.values()), "rate_target": rate, "per_second": summary["requestsPerSec"],
        "p50_ms": p["p50"] * 1000, "p90_ms": p["p90"] * 1000, "p99_ms": p["p99"] * 1000,
        "max_ms": summary["slowest"] * 1000,
        "errors": sum(j.get("errorDistribution", {}).values()), "timeouts": 0,
        "non2xx": sum(n for code, n in statuses.items() if not code.startswith("2")),
        "mode": "fixed-rate", "tool": "oha " + " ".join(args[:-2] if tokens else args) + f" {path}",
    }


def baseline(args: list[str], seconds: float) -> dict:
    def measure() -> dict:
        out = run([str(ROOT / "target/release/auth-bench"), "--seconds", str(seconds)] + args)
        return json.loads(out.strip().splitlines()[-1])
    return stolen(measure)


# ---------------------------------------------------------------- databases


def database(kind: str, work: Path, name: str = "auth") -> tuple[str, callable]:
    """A fresh database and a function that removes it."""
    if kind == "sqlite":
        return f"sqlite://{work}/{name}.db", lambda: None
    base = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
    schema = "bench_" + uuid.uuid4().hex[:12]
    run(["psql", base, "-qc", f"CREATE SCHEMA {schema}"])
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-c%20search_path%3D{schema}", lambda: run(["psql", base, "-qc", f"DROP SCHEMA {schema} CASCADE"])


# ---------------------------------------------------------------- the run


def settle_postgres(url: str) -> None:
    run(["psql", url, "-qc", "VACUUM ANALYZE"])
    run(["psql", url, "-qc", "CHECKPOINT"])


def commit() -> str:
    """The commit measured, `+dirty` when the work tree differs from it."""
    try:
        head = run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                     ":(exclude)bench/results"], cwd=ROOT).strip()
    except (RuntimeError, OSError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    mem_kb = _status_meminfo()
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release()}


def _status_meminfo() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1])


def measure(args) -> dict:
    seconds = 1.0 if args.smoke else args.seconds
    users = 40 if args.smoke else 400
    verify_tokens = 10_000
    chains = 32  # two per connection: wrk prepares the next request before reading a response
    # Scenarios judged against a reference alternate with it: `rounds` parts of `part` seconds.
    rounds = 1 if args.smoke else 3
    part = max(1.0, round(seconds / rounds))
    rate = args.rate
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="auth-bench-"))
    run_id = uuid.uuid4().hex[:8]
    results: dict = {"machine": machine(), "backend": args.db, "seconds_per_scenario": seconds,
                     "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "command": " ".join(["python3", "bench/run.py"] + sys.argv[1:]),
                     "commit": commit(),
                     "baselines": {}, "scenarios": {}}

    log("building the release binaries")
    run(["cargo", "build", "--release", "-p", "auth-server", "-p", "auth-bench"], cwd=ROOT)

    url, drop = database(args.db, work)
    try:
        log("baseline: JWT verification (Argon2id and rotation transactions alternate with their scenarios)")
        only = {n for n in args.only.split(",") if n}
        results["baselines"]["jwt_verify"] = baseline(["jwt"], seconds)

        log_path = Path(os.environ.get("BENCH_SERVER_LOG") or work / "server.log")
        server = Server(url, dict(kv.split("=", 1) for kv in args.env), log_path)
        try:
            time.sleep(1)
            results["idle_rss_mb"] = server.rss_kb() / 1024
            # Each round of the refresh scenario starts fresh chains: a chain's first token is
            # spent once its round has rotated it.
            files = seed(server.url, users, chains * rounds, verify_tokens, run_id, work)

            def wanted(name: str) -> bool:
                return not only or name == "health" or name in only

            if args.db == "postgres":
                # Seeding wrote some 30,000 rows: let PostgreSQL's own upkeep (autovacuum,
                # checkpoint) happen now rather than inside a scenario.
                settle_postgres(url)
            idle_after_seed = server.rss_kb() / 1024
            if any(wanted(n) for n in ("verify", "validate", "mixed")):
                # A gateway's first request with a token verifies it in full; every later one
                # is a cache hit. The scenarios measure that steady state, so each token is
                # seen once before them (the cost of a full verification is the jwt_verify
                # baseline). Otherwise whichever scenario came first would spend some 10% of
                # its first round on the 10,000 first sightings and the next would not.
                log("warming the verified-token cache: each verify token once")
                t = time.time()
                warm(server.url, files["tokens"])
                results["cache_warm_seconds"] = time.time() - t
            s = results["scenarios"]

            def closed(name: str, script: str, connections: int, env: dict[str, str], threads: int = 2) -> None:
                if not wanted(name):
                    return
                log(f"scenario {name}: closed loop, {connections} connections")
                with RssPeak(server.proc.pid) as rss:
                    s[name] = wrk(server.url, script, seconds, threads, connections, env)
                s[name]["peak_rss_mb"] = rss.peak / 1024

            closed("health", "get.lua", 64, {"BENCH_PATH": "/health"})
            # The rate of a 2-core VM drifts by 10-20% within a minute, so each scenario judged
            # against /health alternates with it: three rounds of (/health, scenario), a third of
            # the time each, and the ratio is taken between the two sums.
            for name, script, env in [
                ("jwks", "get.lua", {"BENCH_PATH": "/.well-known/jwks.json"}),
                ("verify", "verify.lua", {"BENCH_TOKENS": str(files["tokens"])}),
                ("validate", "validate.lua", {"BENCH_TOKENS": str(files["tokens"])}),
            ]:
                if not wanted(name):
                    continue
                log(f"scenario {name}: closed loop, 64 connections, {rounds} rounds alternating with /health")
                references, runs = [], []
                with RssPeak(server.proc.pid) as rss:
                    for _ in range(rounds):
                        references.append(wrk(server.url, "get.lua", part, 2, 64, {"BENCH_PATH": "/health"}))
                        runs.append(wrk(server.url, script, part, 2, 64, env))
                s[name] = merge_runs(runs)
                s[name]["peak_rss_mb"] = rss.peak / 1024
                s[name]["health_before"] = merge_runs(references)["ok_per_second"]
                s[name]["health_rounds"] = [r["ok_per_second"] for r in references]
                s[name]["health_steal_pct"] = merge_runs(references)["steal_pct"]
            if wanted("refresh"):
                # The raw rotation transaction of the same store (a fresh database of the same
                # backend each round, the service idle meanwhile), alternating with the
                # service's refreshes.
                log(f"scenario refresh: closed loop, {chains // 2} connections, {rounds} rounds alternating with raw rotations")
                all_chains = files["chains"].read_text().split()
                rotations, runs = [], []
                with RssPeak(server.proc.pid) as rss:
                    for i in range(rounds):
                        round_chains = work / f"chains-{i}.txt"
                        round_chains.write_text("\n".join(all_chains[i * chains:(i + 1) * chains]) + "\n")
                        rotation_url, rotation_drop = database(args.db, work, f"rotation-{i}")
                        try:
                            rotations.append(baseline(["--workers", str(chains // 2), "rotation",
                                                       "--database-url", rotation_url], part))
                        finally:
                            rotation_drop()
                        runs.append(wrk(server.url, "refresh.lua", part, 2, chains // 2, {"BENCH_REFRESH": str(round_chains)}))
                s["refresh"] = merge_runs(runs)
                s["refresh"]["peak_rss_mb"] = rss.peak / 1024
                results["baselines"]["refresh_rotation"] = dict(
                    rotations[0], per_second=sum(r["per_second"] for r in rotations) / len(rotations),
                    rounds=[r["per_second"] for r in rotations],
                    steal_pct=sum(r["steal_pct"] for r in rotations) / len(rotations))
            if args.db == "postgres" and wanted("refresh"):
                # Some 20,000 rotations left dead rows and dirty pages: their vacuum and
                # checkpoint would otherwise run on the two cores during the login scenario.
                settle_postgres(url)
            if wanted("login"):
                # Enough connections to keep every hashing slot busy, not so many that they
                # wait past the queue timeout: the ceiling of logins, not of shedding. Like the
                # scenarios judged against /health, logins alternate with their baseline (raw
                # Argon2id on all cores, the service idle) so that drift cancels out.
                log(f"scenario login: closed loop, {4 * cores} connections, {rounds} rounds alternating with raw Argon2id")
                hashes, runs = [], []
                with RssPeak(server.proc.pid) as rss:
                    for _ in range(rounds):
                        hashes.append(baseline(["argon2"], part))
                        runs.append(wrk(server.url, "login.lua", part, 2, 4 * cores,
                                        {"BENCH_USERS": str(files["users"]), "BENCH_PASSWORD": PASSWORD}))
                s["login"] = merge_runs(runs)
                s["login"]["peak_rss_mb"] = rss.peak / 1024
                results["baselines"]["argon2id_verify"] = dict(
                    hashes[0], per_second=sum(h["per_second"] for h in hashes) / len(hashes),
                    rounds=[h["per_second"] for h in hashes],
                    steal_pct=sum(h["steal_pct"] for h in hashes) / len(hashes))
            closed("signup", "signup.lua", 4 * cores, {"BENCH_RUN_ID": run_id})

            for name, path, method in [("health", "/health", "GET"), ("verify", "/auth/verify", "GET"),
                                       ("validate", "/auth/validate", "POST"), ("jwks", "/.well-known/jwks.json", "GET")]:
                if not wanted(f"{name}_fixed") and not wanted("mixed"):
                    continue
                log(f"scenario {name}: fixed rate {rate}/s")
                tokens = files["tokens"] if name in ("verify", "validate") else None
                with RssPeak(server.proc.pid) as rss:
                    s[f"{name}_fixed"] = fixed_rate(server.url, path, rate, seconds, tokens, method, args.fixed_rate_tool)
                s[f"{name}_fixed"]["peak_rss_mb"] = rss.peak / 1024

            if wanted("mixed") and "verify_fixed" in s:
                log(f"scenario mixed: verify at {rate}/s under a login flood of 256 connections")
                flood: dict = {}
                with RssPeak(server.proc.pid) as rss:
                    t = threading.Thread(target=lambda: flood.update(wrk(
                        server.url, "login.lua", seconds + 2, 2, 256,
                        {"BENCH_USERS": str(files["users"]), "BENCH_PASSWORD": PASSWORD})))
                    t.start()
                    time.sleep(1)
                    under_flood = fixed_rate(server.url, "/auth/verify", rate, seconds, files["tokens"],
                                             tool=args.fixed_rate_tool)
                    t.join()
                s["mixed"] = {"verify_alone": s["verify_fixed"], "verify_under_flood": under_flood,
                              "login_flood": flood, "peak_rss_mb": rss.peak / 1024}
            results["idle_rss_after_seed_mb"] = idle_after_seed
            results["exit_code"] = server.stop()
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
    finally:
        drop()
    return results


def non_2xx(v: dict) -> dict[str, int]:
    """The answers of a scenario's run that were not a success, by status."""
    if v["mode"] == "closed-loop":
        # wrk counts statuses >= 400 together ("4xx-5xx") unless the script counts each.
        return {code: n for code, n in v["statuses"].items() if not code.startswith("2") and n}
    return {"non-2xx": v["non2xx"]} if v.get("non2xx") else {}


def invalid_because(r: dict) -> list[str]:
    """Why a run measured something else than a working service: a scenario that must succeed
    answered otherwise, or the service did not exit 0 after SIGTERM."""
    reasons = []
    for name, v in r["scenarios"].items():
        if name == "mixed":
            name, v = "verify under the login flood (mixed)", v["verify_under_flood"]
        elif name.removesuffix("_fixed") not in MUST_SUCCEED:
            continue
        bad = non_2xx(v)
        if bad:
            reasons.append(f"{name} answered other than 2xx: {bad}")
    code = r.get("exit_code")
    if code is None:
        reasons.append("the service was still running 30 s after SIGTERM (killed)")
    elif code < 0:
        reasons.append(f"the service died of signal {-code} after SIGTERM instead of exiting 0")
    elif code != 0:
        reasons.append(f"the service exited {code} after SIGTERM, not 0")
    return reasons


def verdicts(r: dict) -> list[dict]:
    b, s = r["baselines"], r["scenarios"]
    health = s["health"]["ok_per_second"]
    rows = []

    def row(name, value, reference, ratio_target, holds, unit="/s", rounds=None, steal=None):
        if rounds and max(rounds) > 1.05:
            holds = None  # the reference was disturbed: no verdict, run again
        if steal and abs(steal[0] - steal[1]) > STEAL_GAP:
            holds = None  # the hypervisor took more from one side than the other
        rows.append({"target": name, "measured": value, "reference": reference,
                     "ratio": (value / reference) if reference else None, "wanted": ratio_target,
                     "holds": holds, "unit": unit, "round_ratios": rounds, "steal_pct": steal})

    def steal(scenario, reference):
        """CPU stolen by the hypervisor during the scenario's runs and during its reference's."""
        if scenario.get("steal_pct") is None or reference is None:
            return None
        return (scenario["steal_pct"], reference)

    def per_round(name, references):
        """The ratio of each round to the reference measured just before it: how far the
        verdict is from noise (a ratio above 1 means the reference itself was disturbed: a
        login cannot outrun its own hash, nor a token check /health)."""
        runs = s[name].get("runs") or []
        if not references or len(runs) != len(references):
            return None
        return [run["ok_per_second"] / ref for run, ref in zip(runs, references) if ref]

    if "login" in s:
        login = s["login"]["ok_per_second"]
        argon = b["argon2id_verify"]
        row("login", login, argon["per_second"], 0.90, login >= 0.90 * argon["per_second"],
            rounds=per_round("login", argon.get("rounds")), steal=steal(s["login"], argon.get("steal_pct")))
    if "refresh" in s:
        refresh = s["refresh"]["ok_per_second"]
        rot = b["refresh_rotation"]
        row("refresh", refresh, rot["per_second"], 0.75, refresh >= 0.75 * rot["per_second"],
            rounds=per_round("refresh", rot.get("rounds")), steal=steal(s["refresh"], rot.get("steal_pct")))
    for name in ("verify", "validate", "jwks"):
        if name in s:
            v = s[name]["ok_per_second"]
            reference = s[name].get("health_before", health)
            row(name, v, reference, 0.80, v >= 0.80 * reference,
                rounds=per_round(name, s[name].get("health_rounds")),
                steal=steal(s[name], s[name].get("health_steal_pct")))
    if "mixed" in s:
        m = s["mixed"]
        alone, flooded = m["verify_alone"]["p99_ms"], m["verify_under_flood"]["p99_ms"]
        shed = int(m["login_flood"]["statuses"].get("503", 0))
        other = {k: v for k, v in m["login_flood"]["statuses"].items() if k not in ("200", "503")}
        row("mixed", flooded, alone, 2.0, flooded <= 2 * max(alone, 1.0) and shed > 0 and not other, unit="ms p99")
    row("idle_rss", r["idle_rss_mb"], 25, 1.0, r["idle_rss_mb"] <= 25, unit="MB")
    peaks = [v["peak_rss_mb"] for k, v in s.items() if k in ("login", "mixed")]
    if peaks:
        row("login_rss", max(peaks), 64, 1.0, max(peaks) <= 64, unit="MB")
    return rows


def verdict(holds: bool | None) -> str:
    return "disturbed, run again" if holds is None else ("yes" if holds else "NO")


def markdown(r: dict) -> str:
    b, s = r["baselines"], r["scenarios"]
    mc = r["machine"]
    lines = [f"### {r['backend']} — {r['date']}", ""]
    if r.get("invalid"):
        lines += ["**INVALID RUN: the figures below are not those of a working service.**", ""]
        lines += [f"- {reason}" for reason in r["invalid"]] + [""]
    lines += [f"Machine: {mc['cores']} cores, {mc['memory_gib']} GiB, {mc['cpu']}. "
             f"Command: `{r['command']}`; {r['seconds_per_scenario']:.0f} s per scenario; "
             f"commit `{r.get('commit', '?')}`.", "",
             "| baseline | per second |", "|---|---:|"]
    lines += [f"| {k} | {v['per_second']:,.0f} |" for k, v in b.items()]
    lines += ["", "| scenario | mode | req/s (2xx) | p50 ms | p90 ms | p99 ms | max ms | non-2xx | peak RSS MB |",
              "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for name, v in s.items():
        if name == "mixed":
            continue
        if v["mode"] == "closed-loop":
            bad = {k: n for k, n in v["statuses"].items() if not k.startswith("2")}
            lines.append(f"| {name} | closed | {v['ok_per_second']:,.0f} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | "
                         f"{v['p99_ms']:.2f} | {v['max_ms']:.1f} | {bad or '-'} | {v['peak_rss_mb']:.1f} |")
        else:
            lines.append(f"| {name} | {v['rate_target']}/s | {v['per_second']:,.0f} | {v['p50_ms']:.2f} | "
                         f"{v['p90_ms']:.2f} | {v['p99_ms']:.2f} | {v['max_ms']:.1f} | "
                         f"{v['non2xx'] or '-'} | {v['peak_rss_mb']:.1f} |")
    if "mixed" in s:
        m = s["mixed"]
        f = m["login_flood"]
        lines += ["", f"Mixed ({m['verify_under_flood'].get('tool', 'autocannon').split()[0]}): verify at {m['verify_under_flood']['rate_target']}/s, p99 {m['verify_alone']['p99_ms']:.2f} ms alone, "
              f"{m['verify_under_flood']['p99_ms']:.2f} ms under a 256-connection login flood "
                  f"(logins: {f['ok_per_second']:,.0f}/s served, statuses {f['statuses']}); peak RSS {m['peak_rss_mb']:.1f} MB."]
    lines += ["", f"Idle RSS {r['idle_rss_mb']:.1f} MB at start, {r['idle_rss_after_seed_mb']:.1f} MB after seeding.", "",
              "| target | measured | reference | ratio | by round | steal % | wanted | holds |",
              "|---|---:|---:|---:|---|---|---|---|"]
    for v in r["verdicts"]:
        wanted = {"mixed": "<= 2.0x", "idle_rss": "<= 25 MB", "login_rss": "<= 64 MB"}.get(v["target"], f">= {v['wanted']:.0%}")
        ratio = f"{v['ratio']:.2f}" if v["ratio"] is not None else "-"
        by_round = " / ".join(f"{x:.2f}" for x in v.get("round_ratios") or []) or "-"
        stole = " / ".join(f"{x:.1f}" for x in v.get("steal_pct") or []) or "-"
        lines.append(f"| {v['target']} | {v['measured']:,.1f} {v['unit']} | {v['reference']:,.1f} | {ratio} | "
                     f"{by_round} | {stole} | {wanted} | {verdict(v['holds'])} |")
    if r.get("peers"):
        lines += ["", "| service | login/s | raw hash/s (all cores) | login efficiency | login p99 ms | health/s |",
                  "|---|---:|---:|---:|---:|---:|"]
        for p in r["peers"]:
            lines.append(f"| {p['name']} | {p['login_per_second']:,.1f} | {p['raw_hash_per_second']:,.1f} | "
                         f"{p['efficiency']:.2f} | {p['login_p99_ms']:.1f} | {p['health_per_second']:,.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each scenario")
    parser.add_argument("--rate", type=int, default=1000, help="requests/s of the fixed-rate runs")
    parser.add_argument("--smoke", action="store_true", help="about a second per scenario; asserts nothing about speed, fails on a "
                             "refused request or an exit code other than 0")
    parser.add_argument("--peers", default="", help="comma-separated peers (p000,p001,p003) or 'all'")
    parser.add_argument("--only", default="", metavar="SCENARIOS",
                        help="comma-separated scenarios to run (health is always run); for profiling, not for publishing")
    parser.add_argument("--fixed-rate-tool", choices=["autocannon", "oha"], default="autocannon",
                        help="load generator of the fixed-rate runs (oha: microsecond latencies; needs oha in PATH)")
    parser.add_argument("--out", default=str(BENCH / "results"))
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment of the service under test (repeatable)")
    args = parser.parse_args()

    results = measure(args)
    results["invalid"] = invalid_because(results)
    results["verdicts"] = verdicts(results)
    if args.peers:
        from peers import measure_peers  # noqa: E402  (only needed for side-by-side runs)
        results["peers"] = measure_peers(args, results)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.date.today().isoformat()}-{args.db}" + ("-smoke" if args.smoke else "") + ("-partial" if args.only else "")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    md = markdown(results)
    (out / f"{stem}.md").write_text(md)
    print(md)
    log(f"wrote {out / stem}.json and .md")
    # Speed is never asserted; that every scenario actually ran and served requests is, and
    # that every request that must succeed did, and that the service stopped cleanly.
    failed = False
    dead = [name for name, v in results["scenarios"].items()
            if name != "mixed" and v.get("ok_per_second", v.get("per_second", 0)) <= 0]
    if dead:
        log(f"FAIL: no successful requests in {dead}")
        failed = True
    for reason in results["invalid"]:
        log(f"{'FAIL' if args.smoke else 'INVALID RUN'}: {reason}")
        failed = True
    if results["invalid"] and not args.smoke:
        log("INVALID RUN: the results are marked invalid; do not publish them")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
