#!/usr/bin/env python3
"""Adding an include of a higher module to a lower one fails the build.

For every module, takes the real compile command of one of its sources from the build's
compile_commands.json, checks that it compiles as is, then compiles it again with an include of
a header from a module that is not below it (-include, as if the source's first line included
it) and checks that the compiler stops on that header. Usage: check_builds.py BUILD_DIR SRC_DIR
"""
import json
import os
import shlex
import subprocess
import sys

build, src = sys.argv[1], os.path.realpath(sys.argv[2])
views = os.path.join(build, "include-views")
commands = json.load(open(os.path.join(build, "compile_commands.json")))
modules = sorted(d for d in os.listdir(views) if os.path.isdir(os.path.join(src, d)))


def header_of(module):
    hs = sorted(h for h in os.listdir(os.path.join(src, module)) if h.endswith(".h"))
    return f"{module}/{hs[0]}" if hs else None


def compile_args(module):
    for c in commands:
        f = os.path.realpath(c["file"])
        if os.path.dirname(f) == os.path.join(src, module) and f.endswith(".cpp"):
            args = shlex.split(c["command"]) if "command" in c else c["arguments"]
            if args[0].endswith("ccache"):
                args = args[1:]
            out, skip = [], False
            for a in args[1:]:
                if skip:
                    skip = False
                elif a in ("-o", "-MF", "-MT"):
                    skip = True
                elif a not in ("-MD", "-c") and a != c["file"]:
                    out.append(a)
            out.insert(0, args[0])
            return out + ["-fsyntax-only", f], c["directory"]
    return None, None


failures, checked = [], 0
for m in modules:
    args, cwd = compile_args(m)
    if args is None:
        continue
    ok = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if ok.returncode != 0:
        failures.append(f"{m}: its own source does not compile with its view:\n{ok.stderr[-2000:]}")
        continue
    above = [x for x in modules if not os.path.exists(os.path.join(views, m, x)) and header_of(x)]
    if not above:
        continue
    header = header_of(above[0])
    bad = subprocess.run(args[:-1] + ["-include", header, args[-1]], cwd=cwd,
                         capture_output=True, text=True)
    checked += 1
    # GCC: "No such file or directory"; clang: "file not found".
    not_found = "No such file" in bad.stderr or "file not found" in bad.stderr
    if bad.returncode == 0 or not not_found:
        failures.append(f"{m}: including {header} (module {above[0]}, not below {m}) compiles")
if failures:
    print("\n".join(failures))
    sys.exit(1)
if checked < 10:
    print(f"only {checked} modules checked")
    sys.exit(1)
print(f"{checked} modules: their sources compile, and with an upward include they do not")
