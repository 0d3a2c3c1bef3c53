"""Side-by-side runs against the Python services this one replaces (../shared/peers): the same
wrk scenarios (health, login of distinct users) mapped to each service's paths, and each
service's own raw password-hash rate on all cores, so login efficiency (logins/s divided by
raw hashes/s) compares services whose hash costs differ."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from run import LUA, PASSWORD, ROOT, log, run, wrk

PEERS_DIR = Path(os.environ.get("BENCH_PEERS_DIR", ROOT.parent / "shared" / "peers"))

PEERS = {
    "p000": {"dir": "p000_fastapi", "port": 18000, "health": "/health", "login": "/auth/login",
             "scheme": "bcrypt", "what": "FastAPI token factory (bcrypt cost 12)"},
    "p001": {"dir": "p001_django", "port": 18001, "health": "/auth/health/", "login": "/auth/token/",
             "scheme": "pbkdf2", "what": "Django + SimpleJWT (PBKDF2-SHA256, 1,000,000 iterations)"},
    "p003": {"dir": "p003_fastapi", "port": 18003, "health": "/health", "login": "/auth/login",
             "scheme": "bcrypt", "what": "FastAPI roadmap service (bcrypt cost 12)"},
}

# Raw hash verifications per second on all cores, in the peers' own Python with their own
# libraries: the physical limit of each service's login.
RAW_HASH = r"""
import hashlib, multiprocessing, os, sys, time
scheme, seconds = sys.argv[1], float(sys.argv[2])
def work(_):
    if scheme == "bcrypt":
        import bcrypt
        h = bcrypt.hashpw(b"correct horse battery", bcrypt.gensalt(12))
        check = lambda: bcrypt.checkpw(b"correct horse battery", h)
    else:
        check = lambda: hashlib.pbkdf2_hmac("sha256", b"correct horse battery", b"saltsaltsalt", 1_000_000)
    n, end = 0, time.time() + seconds
    while time.time() < end:
        check(); n += 1
    return n
cores = os.cpu_count()
start = time.time()
with multiprocessing.Pool(cores) as pool:
    total = sum(pool.map(work, range(cores)))
print(total / (time.time() - start))
"""


def measure_peers(args, results: dict) -> list[dict]:
    selected = list(PEERS) if args.peers == "all" else [p.strip()[:4] for p in args.peers.split(",")]
    seconds = 2.0 if args.smoke else args.seconds
    python = PEERS_DIR / ".venv/bin/python"
    if not python.exists():
        log("setting up the peers' virtualenv")
        run(["bash", str(PEERS_DIR / "setup.sh")])
    cores = os.cpu_count() or 1
    rows = [{
        "name": "auth-service (this)", "what": f"Rust, Argon2id m=19456 t=2 p=1, {results['backend']}",
        "login_per_second": results["scenarios"]["login"]["ok_per_second"],
        "login_p99_ms": results["scenarios"]["login"]["p99_ms"],
        "raw_hash_per_second": results["baselines"]["argon2id_verify"]["per_second"],
        "health_per_second": results["scenarios"]["health"]["ok_per_second"],
    }]
    users = [f"peer-{i}@example.com" for i in range(8)]
    users_file = Path(args.out) / "peer-users.txt"
    users_file.parent.mkdir(parents=True, exist_ok=True)
    users_file.write_text("\n".join(users) + "\n")
    for key in selected:
        peer = PEERS[key]
        log(f"peer {key}: seeding, starting, measuring")
        for email in users:
            run(["bash", str(PEERS_DIR / "seed_user.sh"), key, email, PASSWORD])
        run(["bash", str(PEERS_DIR / "start.sh"), key])
        try:
            url = f"http://127.0.0.1:{peer['port']}"
            health = wrk(url, "get.lua", seconds, 2, 64, {"BENCH_PATH": peer["health"]})
            login = wrk(url, "login.lua", seconds, 2, 4 * cores,
                        {"BENCH_PATH": peer["login"], "BENCH_USERS": str(users_file), "BENCH_PASSWORD": PASSWORD})
        finally:
            run(["bash", str(PEERS_DIR / "stop.sh"), key])
        raw = float(subprocess.run([str(python), "-c", RAW_HASH, peer["scheme"], str(seconds)],
                                   capture_output=True, text=True, check=True).stdout.strip())
        rows.append({"name": f"{key} ({peer['dir']})", "what": peer["what"],
                     "login_per_second": login["ok_per_second"], "login_p99_ms": login["p99_ms"],
                     "login_statuses": login["statuses"], "raw_hash_per_second": raw,
                     "health_per_second": health["ok_per_second"]})
    for r in rows:
        r["efficiency"] = r["login_per_second"] / r["raw_hash_per_second"] if r["raw_hash_per_second"] else 0.0
    return rows
