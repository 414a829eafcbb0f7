/// The verifier's two Python programs (DESIGN.md §7; issue 15): a check passes only when the
/// program it runs reached its end, which code under test cannot fake by ending the interpreter
/// early (`os._exit(0)`, `sys.exit(0)` at import, `exec`, a signal, killing its parent), by
/// changing `unittest` or the builtins, or by shadowing the standard library from the workspace.
///
/// While a verifier runs, `python3` (and `python`) is the **guard**: it starts the real
/// interpreter in isolated mode (`-I`: no environment variables, no user site, no workspace
/// ahead of the standard library) on the **harness**, hands it a fresh random token on a pipe,
/// and exits 0 only when the harness wrote that token back with status 0. The harness reads the
/// token before any code of the program runs, runs the program (a script, `-m`, `-c` or stdin)
/// on a thread of its own, keeps the token on the main thread, refuses through an audit hook the
/// ways in-process code could read it (`gc`, other threads' frames, `ctypes`, `/proc/*/mem`,
/// trace functions), is not dumpable (no ptrace or `/proc/PID/mem` from its children), and at
/// the end fails the run when the program changed `unittest` or a builtin, or when `sys.exit`
/// was called from a workspace file that is not one of the workflow's own.
///
/// Limits, stated plainly: code in the verifier's process can still tamper with the harness's
/// own bookkeeping on its thread by walking its frames, or return objects whose `__eq__` always
/// answers True; those are deliberate attacks on the check itself, still confined by the sandbox.
enum VerifierHarness {
    /// The guard, for the interpreter at `python` and the harness at `harness` (paths as the
    /// sandboxed code sees them).
    static func guardScript(python: String, harness: String) -> String {
        guardTemplate.replacingOccurrences(of: "@REAL@", with: python).replacingOccurrences(of: "@HARNESS@", with: harness)
    }

    private static let guardTemplate = #"""
        #!@REAL@ -IS
        # AgentFlow's verifier guard: it stands in for `python3` while a verifier runs. It starts the real
        # interpreter on the harness with a fresh token on a pipe, and exits 0 only when the harness wrote
        # that token back, which it does after the program reached its end. Code under test that ends the
        # interpreter early (os._exit, exec, a signal) never writes it, whatever exit status it chose.
        import os, sys

        REAL = "@REAL@"
        HARNESS = "@HARNESS@"
        # Options that take a value, and those that end option parsing, as python3 reads them.
        WITH_VALUE = "WX"
        PASS_ALONE = {"-V", "--version", "-h", "--help", "-?", "--help-env", "--help-xoptions", "--help-all"}


        def parse(argv):
            """(interpreter flags, mode, target, args) from python3's command line, or None to let the
            real interpreter handle it (version, help, malformed)."""
            flags = []
            i = 0
            while i < len(argv):
                a = argv[i]
                if a in PASS_ALONE:
                    return None
                if a == "--":
                    i += 1
                    break
                if a == "-" or not a.startswith("-"):
                    break
                if a.startswith("--"):
                    if a == "--check-hash-based-pycs" and i + 1 < len(argv):
                        flags += [a, argv[i + 1]]
                        i += 2
                        continue
                    return None
                j = 1
                while j < len(a):
                    ch = a[j]
                    rest = a[j + 1:]
                    if ch in "cm":
                        if rest:
                            return flags, ch, rest, argv[i + 1:]
                        if i + 1 >= len(argv):
                            return None
                        return flags, ch, argv[i + 1], argv[i + 2:]
                    if ch in WITH_VALUE:
                        if rest:
                            flags += ["-" + ch, rest]
                        elif i + 1 < len(argv):
                            flags += ["-" + ch, argv[i + 1]]
                            i += 1
                        else:
                            return None
                        break
                    if ch in "EsIPi":
                        pass  # -I covers -E, -s and -P; no interactive mode here
                    else:
                        flags.append("-" + ch)
                    j += 1
                i += 1
            if i < len(argv) and argv[i] != "-":
                return flags, "script", argv[i], argv[i + 1:]
            return flags, "stdin", "-", argv[i + 1:] if i < len(argv) else []


        def main():
            parsed = parse(sys.argv[1:])
            if parsed is None:
                os.execv(REAL, [REAL] + sys.argv[1:])
            flags, mode, target, args = parsed
            token = os.urandom(16).hex().encode()
            token_read, token_write = os.pipe()
            result_read, result_write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(token_write)
                os.close(result_read)
                os.set_inheritable(token_read, True)
                os.set_inheritable(result_write, True)
                argv = [REAL, "-I", "-B"] + flags + [HARNESS, str(token_read), str(result_write), mode, target] + args
                try:
                    os.execv(REAL, argv)
                finally:
                    os._exit(127)
            os.close(token_read)
            os.close(result_write)
            # Nothing this process holds is secret once the token is handed over, but ptrace or
            # /proc/PID/mem from the code under test could still change what it decides.
            try:
                import ctypes
                ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
            except Exception:
                pass
            os.write(token_write, token)
            os.close(token_write)
            record = b""
            while True:
                try:
                    chunk = os.read(result_read, 4096)
                except InterruptedError:
                    continue
                if not chunk or len(record) > 65536:
                    break
                record += chunk
            while True:
                try:
                    _, status = os.waitpid(pid, 0)
                    break
                except InterruptedError:
                    pass
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                sys.stderr.write(f"verifier: python3 was killed by signal {sig}\n")
                os._exit(128 + sig)
            code = os.WEXITSTATUS(status)
            head, _, tail = record.partition(b" ")
            if head != token or not tail.endswith(b"\n") or not tail[:-1].isdigit():
                sys.stderr.write(
                    "verifier: python3 ended before its program did (os._exit, exec or a signal from the code"
                    f" under test?): exit status {code} is counted as a failure\n")
                os._exit(code if code != 0 else 1)
            recorded = int(tail[:-1])
            os._exit(recorded if recorded != 0 else code)


        main()
        """#

    static let harness = #"""
        # AgentFlow's verifier harness: runs one Python program (a script, -m module, -c command or
        # stdin) as python3 would, then writes the guard's token and the program's exit status. The token
        # is read before any of the program's code runs and is kept on the main thread, whose frames the
        # program, run on a thread of its own, cannot walk to; an audit hook refuses the other ways to
        # read it (gc, other threads' frames, ctypes, /proc/*/mem, trace functions).
        import os, sys


        def main():
            token_fd, result_fd, mode, target = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
            args = sys.argv[5:]
            token = b""
            while len(token) < 32:
                chunk = os.read(token_fd, 32 - len(token))
                if not chunk:
                    break
                token += chunk
            os.close(token_fd)
            os.set_inheritable(result_fd, False)
            # Other processes of the same user (the program's own children) cannot read this one's memory.
            import ctypes
            ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
            del ctypes
            for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
                del sys.modules[name]

            import builtins, runpy, threading, traceback, unittest
            import unittest.case, unittest.loader, unittest.main, unittest.result, unittest.runner, unittest.suite

            cwd = os.getcwd()
            workspace = cwd + "/"
            trusted = frozenset()
            manifest = os.environ.get("AGENTFLOW_VERIFY_MANIFEST")
            if manifest:
                with open(manifest, encoding="utf-8") as f:
                    trusted = frozenset(os.path.normpath(os.path.join(cwd, line.rstrip("\n"))) for line in f if line.strip())

            # What the program must not change: checked when it ends (a changed assertEqual or builtin
            # could turn a failure into a pass).
            watched = [builtins, unittest, unittest.case, unittest.loader, unittest.main, unittest.result, unittest.runner,
                       unittest.suite, unittest.case.TestCase, unittest.TestResult, unittest.TextTestRunner,
                       unittest.TestLoader, unittest.TestSuite, unittest.TextTestResult]
            snapshot = [(obj, dict(vars(obj))) for obj in watched]
            modules = {name: sys.modules[name] for name in sys.modules if name == "unittest" or name.startswith("unittest.")}

            # Like python3 -P: nothing of the workspace shadows the standard library or site-packages;
            # the program's own directory (or the working one) comes last on the path.
            if mode == "script":
                sys.path.append(os.path.dirname(os.path.abspath(target)))
                sys.argv = [target] + args
            else:
                sys.path.append(cwd)
                sys.argv = ["-c" if mode == "c" else ("-m" if mode == "m" else "-")] + args

            main_thread = threading.get_ident()
            refused = ("sys._current_frames", "sys._current_exceptions", "gc.get_objects", "gc.get_referrers",
                       "gc.get_referents", "sys.settrace", "sys.setprofile", "sys.addaudithook", "sys.remote_exec")
            frame_attributes = ("tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back")
            get_ident = threading.get_ident
            basename = os.path.basename

            def hook(event, event_args, get_ident=get_ident, basename=basename, refused=refused, main_thread=main_thread,
                     frame_attributes=frame_attributes):
                if event in refused or event.startswith(("ctypes.", "sys.monitoring")):
                    raise RuntimeError(f"the verifier does not allow {event}")
                if event == "import" and event_args[0] in ("ctypes", "_ctypes", "cffi", "_cffi_backend"):
                    raise RuntimeError(f"the verifier does not allow importing {event_args[0]}")
                if event == "open" and isinstance(event_args[0], (str, bytes)) and basename(event_args[0]) in ("mem", b"mem"):
                    raise RuntimeError("the verifier does not allow opening a process's memory")
                if get_ident() == main_thread and (event == "sys._getframe" or (
                        event == "object.__getattr__" and event_args[1] in frame_attributes)):
                    raise RuntimeError("the verifier's main thread is off limits")

            outcome = []

            def origin(exc):
                tb = exc.__traceback__
                last = None
                while tb is not None:
                    last = tb.tb_frame.f_code.co_filename
                    tb = tb.tb_next
                return last

            def run(outcome=outcome, mode=mode, target=target, workspace=workspace, trusted=trusted, runpy=runpy,
                    builtins=builtins, traceback=traceback, origin=origin, normpath=os.path.normpath, join=os.path.join, cwd=cwd, SystemExit=SystemExit,
                    BaseException=BaseException, type=type, int=int, bool=bool, print=print, isinstance=isinstance, str=str):
                status = 1
                try:
                    if mode == "script":
                        runpy.run_path(target, run_name="__main__")
                    elif mode == "m":
                        runpy.run_module(target, run_name="__main__", alter_sys=True)
                    else:
                        source = sys.stdin.read() if mode == "stdin" else target
                        code = compile(source, "<stdin>" if mode == "stdin" else "<string>", "exec")
                        exec(code, {"__name__": "__main__", "__builtins__": builtins})
                    status = 0
                except SystemExit as e:
                    where = origin(e)
                    path = normpath(join(cwd, where)) if where and not where.startswith("<") else where
                    if type(e) is not SystemExit:
                        print("verifier: an exception derived from SystemExit ended the program", file=sys.stderr)
                        status = 1
                    elif path and path.startswith(workspace) and path not in trusted:
                        print(f"verifier: {path[len(workspace):]} called sys.exit while the check ran; "
                              "a check passes by reaching its end", file=sys.stderr)
                        status = 1
                    elif e.code is None:
                        status = 0
                    elif type(e.code) is int or type(e.code) is bool:
                        status = int(e.code) & 0xFF
                    else:
                        print(e.code, file=sys.stderr)
                        status = 1
                except BaseException:
                    try:
                        traceback.print_exc()
                    except BaseException:
                        pass
                    status = 1
                finally:
                    outcome.append(status)

            thread = threading.Thread(target=run, name="MainThread")
            sys.addaudithook(hook)
            thread.start()
            try:
                thread.join()
            except BaseException:
                outcome.append(1)
            status = outcome[0] if len(outcome) == 1 else 1
            # Changes the program made to unittest or the builtins: a failure, whatever the tests said.
            for obj, before in snapshot:
                now = vars(obj)
                names = set(before) if obj is builtins else set(before) | set(now)
                changed = [name for name in names if now.get(name, snapshot) is not before.get(name, snapshot)]
                if changed:
                    sys.stderr.write(f"verifier: the code under test changed {getattr(obj, '__name__', obj)}.{sorted(changed)[0]}\n")
                    status = 1
            for name, module in modules.items():
                if sys.modules.get(name) is not module:
                    sys.stderr.write(f"verifier: the code under test replaced the module {name}\n")
                    status = 1
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:
                pass
            os.write(result_fd, token + b" %d\n" % status)
            os.close(result_fd)


        main()
        """#
}
