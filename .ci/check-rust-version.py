#!/usr/bin/env python3
"""Checks that every workspace crate's `rust-version` is at least that of each crate it
depends on (normal dependencies, all features, transitively), so that the minimum Rust a
crate claims is true. Reads `cargo metadata`; exits 1 naming each crate that claims too little."""
import json
import subprocess
import sys


def version(text):
    return tuple(int(x) for x in (text or "0").split(".")[:3]) + (0,) * (3 - len((text or "0").split(".")[:3]))


meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--all-features"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
wrong = 0
for member in meta["workspace_members"]:
    claimed = packages[member].get("rust_version")
    seen, stack, needed, by = set(), [member], (0, 0, 0), None
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        rv = packages[node].get("rust_version")
        if node != member and rv and version(rv) > needed:
            needed, by = version(rv), f"{packages[node]['name']} {packages[node]['version']}"
        stack.extend(
            d["pkg"] for d in nodes[node]["deps"] if any(k["kind"] is None for k in d["dep_kinds"])
        )
    name = packages[member]["name"]
    if version(claimed) < needed:
        wrong += 1
        print(f"{name}: rust-version {claimed}, but {by} needs {'.'.join(map(str, needed))}")
    else:
        print(f"{name}: rust-version {claimed} (dependencies need {'.'.join(map(str, needed))})")
sys.exit(1 if wrong else 0)
