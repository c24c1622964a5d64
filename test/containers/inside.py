# Run as a task's command inside an agent's container (test/containers/isolation.test.ts): reports,
# as the last line of its output, what the task's process can see and do. Markers (the strings that
# must not be found) come base64-encoded in argv: as they are, they would be in its own cmdline.
import base64, json, os, re, stat, sys

markers = [m for m in json.loads(base64.b64decode(sys.argv[1])) if m]
report = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "cwd": os.getcwd()}

status = open("/proc/self/status").read()
report["capEff"] = re.search(r"^CapEff:\s*(\S+)", status, re.M).group(1)
report["capPrm"] = re.search(r"^CapPrm:\s*(\S+)", status, re.M).group(1)
report["noNewPrivs"] = re.search(r"^NoNewPrivs:\s*(\S+)", status, re.M).group(1)

def can_write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        os.unlink(path)
        return True
    except OSError:
        return False

outside = ["/x", "/app/x", "/etc/x", "/usr/x", "/usr/local/bin/x", "/var/x", "/root/x", "/home/node/x", "/opt/x", "/sbin/x"]
report["writableOutside"] = [p for p in outside if can_write(p)]
report["writableInside"] = {p: can_write(p) for p in [os.path.join(os.getcwd(), "probe"), "/tmp/probe"]}

secret_names = re.compile(r"AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|CONTAINER_CREDENTIALS|WEB_IDENTITY)|ANTHROPIC_API_KEY|TASK_?TOKEN|API_KEY|_SECRET", re.I)
report["secretEnv"] = sorted(k for k in os.environ if secret_names.search(k))
report["markersInEnv"] = [m for m in markers if any(m in v for v in os.environ.values())]

# Files that can hold what the runtime put there: the root filesystem is read-only, so the image's
# own files are the image's (test/containers/image.test.ts holds them); what a run adds is in /proc,
# the writable mounts and what the runtime mounts in (/etc/hosts, /etc/resolv.conf, /run, /dev/shm).
roots = ["/proc", "/tmp", os.getcwd(), os.environ.get("XL_WORKSPACE_ROOT", "/workspace"), "/etc", "/run", "/dev/shm", "/home", "/root", "/var", "/sys/fs/cgroup"]
found, read, seen = [], 0, set()
for root in roots:
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: None):
        if dirpath.startswith("/proc"):
            # Every process's files, but not the kernel's own tables nor a task's fd links twice.
            parts = dirpath.split("/")
            if len(parts) > 2 and not parts[2].isdigit() and parts[2] != "self":
                dirnames[:] = []
            if len(parts) > 3:
                dirnames[:] = []
            # fd links would open the task's own pipes (a read that never ends).
            dirnames[:] = [d for d in dirnames if d not in ("fd", "fdinfo", "map_files", "task")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path in seen or name in ("pagemap", "mem", "kcore", "kmsg", "clear_refs"):
                continue
            seen.add(path)
            try:
                # Regular files only: a FIFO or a socket would block or fail.
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                with open(path, "rb") as f:
                    data = f.read(1 << 20)
            except OSError:
                continue
            read += 1
            for m in markers:
                if m.encode() in data:
                    found.append({"file": path, "marker": m[:12]})
report["filesRead"] = read
report["markersInFiles"] = found

pids = [p for p in os.listdir("/proc") if p.isdigit()]
workers = []
for p in pids:
    try:
        cmdline = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    except OSError:
        continue
    if "dist/agent/main.mjs" in cmdline:
        try:
            open(f"/proc/{p}/environ", "rb").read()
            readable = True
        except OSError:
            readable = False
        workers.append({"pid": int(p), "environReadable": readable})
report["workers"] = workers
report["pids"] = len(pids)
report["ns"] = {n: os.readlink(f"/proc/self/ns/{n}") for n in ["pid", "mnt", "net", "uts", "ipc", "user"]}
print(json.dumps(report))
