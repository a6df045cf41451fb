#!/usr/bin/env python3
"""The measuring half of bench/agents.sh (which starts and stops everything and saves its snapshots).

  agents_report.py shares WORK AGENT...        the latest share each agent logged, and their sum
  agents_report.py failover WORK BIN CONFIG KILLED T_KILL TARGETS PGPORT SURVIVOR...
                                                watches a killed leader's succession; prints `key value` lines
  agents_report.py report WORK TARGETS INTERVAL CLK_TCK PEER PG_VERSION
                                                the figures, PASS/FAIL lines and the summary; exit 1 on a FAIL
"""

import collections
import json
import math
import re
import subprocess
import sys
import time

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SHARE = re.compile(r"This agent's share of its location's checks\..*?\bchecks=(\d+)")
ERROR_LINE = re.compile(r"\b(ERROR|WARN)\b")
# Expected warnings: the bench configures no channel on purpose.
KNOWN_WARN = re.compile(r"No \[\[notify\]\] channel configured")


def log_lines(work, agent):
    try:
        with open(f"{work}/{agent}.log", errors="replace") as f:
            return [ANSI.sub("", line) for line in f]
    except FileNotFoundError:
        return []


def latest_share(work, agent):
    share = None
    for line in log_lines(work, agent):
        m = SHARE.search(line)
        if m:
            share = int(m.group(1))
    return share


def shares(work, agents):
    got = {a: latest_share(work, a) for a in agents}
    total = sum(v for v in got.values() if v is not None) if all(v is not None for v in got.values()) else -1
    return got, total


def cmd_shares(work, *agents):
    """Prints `a1=N … sum S`; S is -1 until every agent has logged a share, and also while any agent holds more
    than its fair share (the first to start takes everything until the others are seen): a settled location."""
    got, total = shares(work, agents)
    fair = -(-total // len(agents)) if total > 0 else 0
    settled = total if total >= 0 and all(v <= fair for v in got.values()) else -1
    print(" ".join(f"{a}={'-' if v is None else v}" for a, v in got.items()), "sum", settled)


def cmd_failover(work, binary, config, killed, t_kill, targets, pgport, *survivors):
    """Polls until another agent leads, the survivors' logged shares cover every check, and check_leases agrees
    (or 60 s). Each time is when the poll that saw it returned: an upper bound, late by at most one poll."""
    t_kill, targets = float(t_kill), int(targets)
    found = {}
    polls = 0
    while time.time() - t_kill < 60 and len(found) < 3:
        polls += 1
        if "leader" not in found:
            out = subprocess.run([binary, "agents", "--json", "--config", config], capture_output=True, text=True)
            try:
                rows = json.loads(out.stdout)
            except json.JSONDecodeError:
                rows = []
            for a in rows:
                name = a.get("name") or a.get("info", {}).get("name")
                if a.get("leader") and name != killed:
                    found["leader"] = (time.time() - t_kill, name)
        if "retaken" not in found:
            got, total = shares(work, survivors)
            if total == targets:
                found["retaken"] = (time.time() - t_kill, " ".join(f"{a}={v}" for a, v in got.items()))
        if "retaken_db" not in found:
            sql = ("SELECT holder, count(*) FROM check_leases WHERE location = 'eu' AND expires_at > "
                   "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT GROUP BY holder")
            out = subprocess.run(["psql", "-X", "-At", "-F", " ", "-h", "127.0.0.1", "-p", pgport, "-U", "postgres",
                                  "-d", "lookout", "-c", sql], capture_output=True, text=True)
            held = dict(line.split() for line in out.stdout.split("\n") if line.strip())
            if sum(int(v) for a, v in held.items() if a in survivors) == targets:
                found["retaken_db"] = (time.time() - t_kill, " ".join(f"{a}={v}" for a, v in sorted(held.items())))
        time.sleep(0.2)
    print(f"killed {killed}")
    print(f"t_kill {t_kill}")
    print(f"polls {polls}")
    for key in ("leader", "retaken", "retaken_db"):
        secs, what = found.get(key, (-1, "-"))
        print(f"{key} {secs:.2f} {what}")


def read_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            parts = line.split(maxsplit=1)
            if len(parts) == 2:
                meta[parts[0]] = parts[1].strip()
    return meta


def histogram(path):
    buckets, count = {}, 0
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r'lookout_probe_start_delay_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
                if m:
                    buckets[m.group(1)] = int(m.group(2))
                m = re.match(r"lookout_probe_start_delay_seconds_count (\d+)", line)
                if m:
                    count = int(m.group(1))
    except FileNotFoundError:
        pass
    return buckets, count


def quantile_bound(b0, b1, n, q):
    """The smallest bucket bound holding q of the window's checks (inf when none does, or no checks)."""
    for v, k in sorted((math.inf if k == "+Inf" else float(k), k) for k in b1):
        if n and (b1[k] - b0.get(k, 0)) >= q * n:
            return v
    return math.inf


def pg_stats(path):
    rows = {}
    with open(path) as f:
        for line in f:
            name, *vals = line.strip().split(",")
            rows[name] = [int(v) for v in vals]
    return rows


def requests(work):
    """Per target index, the sorted times nginx answered /t/{i}."""
    by_target = collections.defaultdict(list)
    with open(f"{work}/nginx/logs/access.log") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[1].startswith("/t/"):
                try:
                    by_target[int(parts[1][3:])].append(float(parts[0]))
                except ValueError:
                    pass
    for times in by_target.values():
        times.sort()
    return by_target


def fmt_s(v):
    return "never" if v < 0 or v == math.inf else f"{v:.1f} s"


def phase_figures(work, name, targets, interval, tck, reqs):
    d = f"{work}/{name}"
    meta = read_meta(f"{d}/meta")
    agents = meta["agents"].split()
    t0, t1 = float(meta["t0"]), float(meta["t1"])
    span = t1 - t0
    f = {"name": name, "agents": agents, "span": span, "settled": float(meta["settled"]),
         "shares": meta.get("shares_warm", "")}
    per = {}
    for a in agents:
        (b0, n0), (b1, n1) = histogram(f"{d}/m0_{a}"), histogram(f"{d}/m1_{a}")
        n = n1 - n0
        per[a] = {
            "checks": n,
            "p50": quantile_bound(b0, b1, n, 0.50),
            "p99": quantile_bound(b0, b1, n, 0.99),
            "within1s": (b1.get("1.0", 0) - b0.get("1.0", 0)) / n if n else 0.0,
            "cpu": (int(meta[f"cpu1_{a}"]) - int(meta[f"cpu0_{a}"])) / tck / span * 100,
            "rss": int(meta[f"VmRSS1_{a}"]) / 1024,
            "hwm": int(meta[f"VmHWM1_{a}"]) / 1024,
            "threads": int(meta[f"Threads1_{a}"]),
        }
    f["per"] = per
    f["pgcpu"] = (int(meta["pgcpu1"]) - int(meta["pgcpu0"])) / tck / span * 100
    # Probes on schedule: requests per target inside the window.
    expected = span / interval
    exp_round = round(expected)
    counts = collections.Counter()
    dup_targets = 0
    total = 0
    for i in range(targets):
        times = [t for t in reqs.get(i, []) if t0 <= t < t1]
        total += len(times)
        c = len(times)
        if c == 0:
            counts["zero"] += 1
        elif c < exp_round - 1:
            counts["fewer"] += 1
        elif c <= exp_round + 1:
            counts["expected"] += 1
        else:
            counts["more"] += 1
        if any(b - a < interval / 2 for a, b in zip(times, times[1:])):
            dup_targets += 1
    f.update(expected=expected, counts=counts, dup_targets=dup_targets, requests=total,
             req_per_s=total / span, want_per_s=targets / interval)
    # PostgreSQL writes over the window.
    p0, p1 = pg_stats(f"{d}/pg0"), pg_stats(f"{d}/pg1")
    db0, db1 = p0["db"], p1["db"]
    f["pg_rows"] = (sum(db1[:3]) - sum(db0[:3])) / span
    f["pg_ins_upd_del"] = [(db1[i] - db0[i]) / span for i in range(3)]
    f["pg_commits"] = (db1[3] - db0[3]) / span
    f["pg_rollbacks"] = (db1[4] - db0[4]) / span
    tables = {}
    for t, v1 in p1.items():
        if t == "db":
            continue
        v0 = p0.get(t, [0, 0, 0, 0, 0])
        ins, upd, dele, hot = ((v1[i] - v0[i]) / span for i in range(4))
        if ins or upd or dele or t in ("results", "forwarded", "location_states", "check_leases", "agents", "leases"):
            tables[t] = (ins, upd, dele, hot)
    f["tables"] = tables
    # Double probing at any time of the phase (warm-up and, for the 3 agents, the failover too): two requests of
    # one target closer than half an interval, grouped by second so a burst shows when it happened.
    end = t1
    kill = math.inf
    fo_meta = f"{work}/failover/meta"
    if name == "multi":
        try:
            fo_read = read_meta(fo_meta)
            end = float(fo_read.get("t_end", t1))
            kill = float(fo_read.get("t_kill", math.inf))
        except FileNotFoundError:
            pass
    start = float(meta.get("start", t0))
    pairs = []
    for i, times in reqs.items():
        times = [t for t in times if start <= t < end]
        pairs += [(a, i) for a, b in zip(times, times[1:]) if b - a < interval / 2]
    # A probe of the killed agent in flight at the kill is lost with it (never recorded): the agent that takes the
    # check over probes it again. Those are counted apart, with a goal of their own.
    f["failover_dups"] = len({i for a, i in pairs if a >= kill - interval / 2})
    pairs = [(a, i) for a, i in pairs if a < kill - interval / 2]
    f["run_dups"] = len({i for _, i in pairs})
    f["run_dup_pairs"] = len(pairs)
    f["run_span"] = end - start
    if pairs:
        first, last = min(pairs)[0], max(pairs)[0]
        f["run_dup_when"] = (f"{first - start:.1f}-{last - start:.1f} s after the agents started "
                             f"({time.strftime('%H:%M:%S', time.gmtime(first))}-"
                             f"{time.strftime('%H:%M:%S', time.gmtime(last))} UTC)")
    f["log_problems"] = {a: [l.rstrip() for l in log_lines(work, a) if ERROR_LINE.search(l) and not KNOWN_WARN.search(l)] for a in agents}
    return f


def print_phase(f, targets, interval):
    print(f"--- {f['name']}: {len(f['agents'])} agent(s), {targets} targets every {interval:g} s, window "
          f"{f['span']:.0f} s ---")
    print(f"  shares settled after {fmt_s(f['settled'])}; at the window's start: {f['shares']}")
    print(f"  {'agent':<6} {'checks':>7} {'p50 delay':>10} {'p99 delay':>10} {'<=1s':>8} {'CPU%':>6} "
          f"{'RSS MB':>7} {'HWM MB':>7} {'threads':>7}")
    for a, p in f["per"].items():
        print(f"  {a:<6} {p['checks']:>7} {p['p50'] * 1000:>8.1f}ms {p['p99'] * 1000:>8.1f}ms "
              f"{p['within1s'] * 100:>7.2f}% {p['cpu']:>6.1f} {p['rss']:>7.0f} {p['hwm']:>7.0f} {p['threads']:>7}")
    print(f"  (delays are histogram bucket bounds: p99 <= the value shown)  PostgreSQL CPU {f['pgcpu']:.1f} % of a core")
    c = f["counts"]
    print(f"  nginx: {f['requests']} requests, {f['req_per_s']:.1f}/s (schedule: {f['want_per_s']:.1f}/s); per target "
          f"(expected {f['expected']:.2f}): 0 probes {c['zero']}, fewer {c['fewer']}, expected +-1 {c['expected']}, "
          f"more {c['more']}; targets with two requests < {interval / 2:g} s apart: {f['dup_targets']}")
    print(f"  whole phase ({f['run_span']:.0f} s from the agents' start{', failover included' if f['name'] == 'multi' else ''}): "
          f"{f['run_dups']} targets probed twice < {interval / 2:g} s apart ({f['run_dup_pairs']} pairs)"
          + (f", {f['run_dup_when']}" if f["run_dups"] else ""))
    ins, upd, dele = f["pg_ins_upd_del"]
    print(f"  PostgreSQL: {f['pg_rows']:.0f} rows written/s (ins {ins:.0f}, upd {upd:.0f}, del {dele:.0f}), "
          f"{f['pg_commits']:.1f} commits/s ({f['pg_rows'] / max(f['pg_commits'], 1e-9):.1f} rows per commit), "
          f"{f['pg_rollbacks']:.2f} rollbacks/s")
    print(f"    {'table':<22} {'ins/s':>8} {'upd/s':>8} {'(HOT)':>8} {'del/s':>8}")
    for t, (i, u, d, h) in sorted(f["tables"].items(), key=lambda kv: -sum(kv[1][:3])):
        print(f"    {t:<22} {i:>8.1f} {u:>8.1f} {h:>8.1f} {d:>8.1f}")
    for a, lines in f["log_problems"].items():
        errors = [l for l in lines if re.search(r"\bERROR\b", l)]
        if lines:
            print(f"  {a}'s log (whole run): {len(errors)} ERROR, {len(lines) - len(errors)} WARN lines (the bench's "
                  f"own 'No [[notify]]' warning left out), first ones:")
            for line in (errors or lines)[:3]:
                print(f"    {line[:400]}")


def failover_figures(work, interval, reqs):
    meta = read_meta(f"{work}/failover/meta")
    if "t_kill" not in meta:
        return None
    t_kill, t_end = float(meta["t_kill"]), float(meta["t_end"])
    secs = {k: float(meta[k].split()[0]) for k in ("leader", "retaken", "retaken_db")}
    with open(f"{work}/failover/killed_targets") as f:
        killed = {int(line.strip()[1:]) for line in f if line.strip().startswith("t")}
    gaps_killed, gaps_other, missing, dup = [], [], 0, 0
    for i, times in reqs.items():
        before = [t for t in times if t < t_kill]
        after = [t for t in times if t_kill <= t < t_end]
        if not before:
            continue
        if not after:
            missing += 1
            continue
        gap = after[0] - before[-1]
        (gaps_killed if i in killed else gaps_other).append(gap)
        seq = [before[-1]] + after
        if any(b - a < interval / 2 for a, b in zip(seq, seq[1:])):
            dup += 1
    return {
        "killed": meta["killed"], "n_killed": len(killed), "polls": int(meta["polls"]),
        "leader": secs["leader"], "new_leader": meta["leader"].split()[1],
        "retaken": secs["retaken"], "retaken_db": secs["retaken_db"], "retaken_shares": meta["retaken"].split(None, 1)[1],
        "max_gap_killed": max(gaps_killed, default=math.nan), "max_gap_other": max(gaps_other, default=math.nan),
        "missed_killed": sum(1 for g in gaps_killed if g > 1.5 * interval),
        "missed_other": sum(1 for g in gaps_other if g > 1.5 * interval),
        "n_gaps_killed": len(gaps_killed), "missing": missing, "dup": dup, "watched": t_end - t_kill,
    }


def cmd_report(work, targets, interval, tck, peer, pg_version):
    targets, interval, tck, peer = int(targets), float(interval), int(tck), peer != "0"
    reqs = requests(work)
    multi = phase_figures(work, "multi", targets, interval, tck, reqs)
    solo = phase_figures(work, "peer", targets, interval, tck, reqs) if peer else None
    fo = failover_figures(work, interval, reqs)
    print(f"=== bench/agents.sh: PostgreSQL {pg_version} (fsync=off, full_page_writes=off), nginx on 127.0.0.1 ===")
    print_phase(multi, targets, interval)
    if solo:
        print_phase(solo, targets, interval)
    goals = []
    ok = lambda b: "PASS" if b else "FAIL"  # noqa: E731
    for a, p in multi["per"].items():
        goals.append((p["p99"] <= 1.0, f"{a}: p99 start delay <= {p['p99'] * 1000:g} ms (goal <= 1 s)"))
    c = multi["counts"]
    goals.append((multi["settled"] >= 0, f"shares settled (sum {targets}) after {fmt_s(multi['settled'])}"))
    if multi["expected"] >= 1:
        goals.append((c["zero"] == 0, f"targets never probed in the window: {c['zero']} (goal 0)"))
    else:
        print(f"  (window shorter than the interval: 'never probed' is not judged)")
    goals.append((multi["dup_targets"] == 0 and c["more"] == 0,
                  f"targets probed twice (by two agents): {multi['dup_targets']} close pairs, {c['more']} over "
                  f"expected+1 (goal 0)"))
    goals.append((multi["run_dups"] == 0,
                  f"targets probed twice over the whole 3-agent run before the kill (warm-up, window): {multi['run_dups']}"
                  + (f", {multi['run_dup_when']}" if multi["run_dups"] else "") + " (goal 0)"))
    if fo:
        limit = max(1, fo["n_killed"] // 100)
        goals.append((multi["failover_dups"] <= limit,
                      f"targets probed again at the failover (their result was lost with the killed agent): "
                      f"{multi['failover_dups']} (goal <= 1 % of its {fo['n_killed']} checks)"))
    if fo:
        goals.append((0 <= fo["leader"] <= 15, f"failover: new leader {fo['new_leader']} after {fmt_s(fo['leader'])} "
                                               f"(goal <= 15 s)"))
        goals.append((0 <= fo["retaken"] <= 15, f"failover: {fo['killed']}'s {fo['n_killed']} checks retaken after "
                                                f"{fmt_s(fo['retaken'])} (goal <= 15 s)"))
    else:
        goals.append((False, "failover: no leader was found to kill"))
    print("--- failover ---")
    if fo:
        print(f"  SIGKILL of leader {fo['killed']} (held {fo['n_killed']} checks); polled every ~0.2 s + the command "
              f"({fo['polls']} polls), watched {fo['watched']:.0f} s")
        print(f"  new leader: {fo['new_leader']} after {fmt_s(fo['leader'])}")
        print(f"  checks retaken: survivors' logged shares sum to {targets} after {fmt_s(fo['retaken'])} "
              f"({fo['retaken_shares']}); check_leases agrees after {fmt_s(fo['retaken_db'])}")
        print(f"  requests across the kill, killed agent's targets: max gap {fo['max_gap_killed']:.1f} s "
              f"(interval {interval:g} s, so {fo['max_gap_killed'] - interval:.1f} s late), "
              f"{fo['missed_killed']} of {fo['n_gaps_killed']} missed a probe (gap > 1.5 intervals)")
        print(f"  other targets: max gap {fo['max_gap_other']:.1f} s, {fo['missed_other']} missed a probe; "
              f"targets not probed again after the kill: {fo['missing']}; probed twice: {fo['dup']}")
    print("--- goals ---")
    for good, text in goals:
        print(f"  {ok(good)} {text}")
    print("--- summary ---")
    print(f"  {len(multi['agents'])} agents, {targets} targets every {interval:g} s, window {multi['span']:.0f} s:")
    for a, p in multi["per"].items():
        ratio = ""
        if solo:
            s = solo["per"]["solo"]
            ratio = (f" = {p['cpu'] / max(s['cpu'], 1e-9):.2f}x CPU, {p['rss'] / max(s['rss'], 1e-9):.2f}x RSS, "
                     f"{p['hwm'] / max(s['hwm'], 1e-9):.2f}x HWM of one agent")
        print(f"    {a}: p99 start delay <= {p['p99'] * 1000:g} ms, CPU {p['cpu']:.1f} %, RSS {p['rss']:.0f} MB "
              f"(peak {p['hwm']:.0f} MB){ratio}")
    tot_cpu = sum(p["cpu"] for p in multi["per"].values())
    print(f"    all agents: CPU {tot_cpu:.1f} %, RSS {sum(p['rss'] for p in multi['per'].values()):.0f} MB; "
          f"PostgreSQL CPU {multi['pgcpu']:.1f} %")
    if solo:
        s = solo["per"]["solo"]
        print(f"    one agent alone (same PostgreSQL): p99 <= {s['p99'] * 1000:g} ms, CPU {s['cpu']:.1f} %, RSS "
              f"{s['rss']:.0f} MB (peak {s['hwm']:.0f} MB); PostgreSQL CPU {solo['pgcpu']:.1f} %, "
              f"{solo['pg_rows']:.0f} rows/s, {solo['pg_commits']:.1f} commits/s")
        print(f"    all {len(multi['agents'])} agents / one: CPU {tot_cpu / max(s['cpu'], 1e-9):.2f}x")
    c = multi["counts"]
    print(f"    probes: {multi['req_per_s']:.1f}/s (schedule {multi['want_per_s']:.1f}/s); unprobed {c['zero']}, "
          f"expected +-1 {c['expected']}, more {c['more']}, probed twice {multi['dup_targets']} (whole run: "
          f"{multi['run_dups']})")
    print(f"    PostgreSQL: {multi['pg_rows']:.0f} rows written/s, {multi['pg_commits']:.1f} commits/s; " + ", ".join(
        f"{t} {sum(v[:3]):.0f}/s" for t, v in sorted(multi["tables"].items(), key=lambda kv: -sum(kv[1][:3]))
        if sum(v[:3]) >= 0.05))
    if fo:
        print(f"    failover: new leader after {fmt_s(fo['leader'])}, checks retaken after {fmt_s(fo['retaken'])} "
              f"(leases {fmt_s(fo['retaken_db'])}), max request gap of the killed agent's targets "
              f"{fo['max_gap_killed']:.1f} s ({fo['missed_killed']}/{fo['n_gaps_killed']} missed a probe)")
    errs = {a: sum(1 for l in lines if re.search(r"\bERROR\b", l)) for a, lines in multi["log_problems"].items()}
    if solo:
        errs.update({a: sum(1 for l in lines if re.search(r"\bERROR\b", l)) for a, lines in solo["log_problems"].items()})
    print("    ERROR lines in the agents' logs: " + ", ".join(f"{a} {n}" for a, n in errs.items()))
    failed = [t for g, t in goals if not g]
    print(f"  {'ALL GOALS PASS' if not failed else f'{len(failed)} GOAL(S) FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "shares":
        cmd_shares(args[0], *args[1:])
    elif cmd == "failover":
        cmd_failover(*args)
    elif cmd == "report":
        sys.exit(cmd_report(*args))
    else:
        sys.exit(f"unknown command {cmd}")
