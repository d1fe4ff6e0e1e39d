//go:build linux

package e2e

// The cgroup v2 test on a real kernel (docs/cgroups.md, "What is tested"):
// Debian's kernel booted under qemu with cgroup_no_v1=all, from an
// initramfs that holds static horust, horustctl, busybox and vmguest (the
// scenarios and the programs the services run, e2e/vmguest). The init
// script mounts the filesystems, enables the controllers in the root
// cgroup as a container host does, runs "vmguest run" (each scenario in a
// container-like cgroup of its own), and then execs horust as PID 1 of the
// VM, whose one service checks its own cgroup; when it exits, horust exits
// and the kernel reboots, which ends qemu (-no-reboot). Results come on
// the serial console as "VMTEST <name> ok|FAIL <detail>" lines.

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// vmScenarios are the result lines the VM must print, in order.
var vmScenarios = []string{
	"limits", "two-instances", "cgroupns", "readonly", "readonly-ignore",
	"readonly-cgroupns", "readonly-under-horust", "bench-100", "clean-tree", "pid1",
}

const vmInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t cgroup2 none /sys/fs/cgroup
mount -t tmpfs tmp /tmp
echo "+cpu +memory +pids" > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/runner
echo $$ > /sys/fs/cgroup/runner/cgroup.procs
/vmguest run
mkdir /sys/fs/cgroup/pid1
echo $$ > /sys/fs/cgroup/pid1/cgroup.procs
exec /horust --services-path /etc/pid1 --uds-folder-path /tmp
`

const vmPid1Service = `command = "/vmguest pid1check"
[resource-limit]
memory = "64 MiB"
pids-max = 64
`

func TestCgroupV2OnARealKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM (about 30 s)")
	}
	// HORUST_VM_BENCH=1 also runs the benchmark in the VM (docs/benchmarks.md).
	if runtime.GOARCH != "amd64" {
		t.Skipf("the VM is x86-64 and so are its binaries; this is %s", runtime.GOARCH)
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	slices.Sort(kernels)
	if len(kernels) == 0 {
		t.Skip("no kernel in /boot (apt-get install linux-image-amd64)")
	}
	kernel := kernels[len(kernels)-1]
	if f, err := os.Open(kernel); err != nil {
		t.Skipf("cannot read the kernel: %v", err)
	} else {
		f.Close()
	}
	busybox := "/bin/busybox"
	if f, err := elf.Open(busybox); err != nil {
		t.Skipf("no busybox: %v (apt-get install busybox-static)", err)
	} else {
		static := !slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
		f.Close()
		if !static {
			t.Skip("busybox is dynamically linked (apt-get install busybox-static)")
		}
	}

	dir := t.TempDir()
	for _, b := range []struct{ out, pkg string }{
		{"horust", "../cmd/horust"}, {"horustctl", "../cmd/horustctl"}, {"vmguest", "./vmguest"},
	} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	var cpio newc
	for _, d := range []string{"bin", "dev", "etc", "etc/pid1", "proc", "sys", "tmp"} {
		cpio.dir(d)
	}
	cpio.charDev("dev/console", 5, 1)
	cpio.file("init", 0o755, []byte(vmInit))
	cpio.file("etc/pid1/check.toml", 0o644, []byte(vmPid1Service))
	for name, src := range map[string]string{
		"bin/busybox": busybox, "horust": filepath.Join(dir, "horust"),
		"horustctl": filepath.Join(dir, "horustctl"), "vmguest": filepath.Join(dir, "vmguest"),
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		cpio.file(name, 0o755, b)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := os.WriteFile(initrd, cpio.close(), 0o644); err != nil {
		t.Fatal(err)
	}

	cmdline := "console=ttyS0 cgroup_no_v1=all panic=-1 quiet loglevel=3"
	limit := 4 * time.Minute // a hung VM, not a slow one: it takes about 30 s
	if os.Getenv("HORUST_VM_BENCH") != "" {
		cmdline += " vmbench=1" // the kernel passes it on to init's environment
		limit = 15 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, qemu,
		"-machine", "accel=kvm:tcg", "-m", "512", "-smp", "1",
		"-kernel", kernel, "-initrd", initrd,
		"-append", cmdline,
		"-nographic", "-no-reboot", "-nic", "none")
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	err = cmd.Run()
	t.Logf("the VM ran %.1f s", time.Since(start).Seconds())
	if ctx.Err() != nil {
		t.Fatalf("the VM did not finish in time; console:\n%s", console.String())
	}
	if err != nil {
		t.Errorf("qemu: %v", err)
	}

	results := map[string]string{}
	var order []string
	sc := bufio.NewScanner(&console)
	for sc.Scan() {
		// The firmware's escape codes may precede the first line.
		_, line, ok := strings.Cut(sc.Text(), "VMTEST ")
		if !ok {
			continue
		}
		name, rest, _ := strings.Cut(strings.TrimRight(line, "\r"), " ")
		results[name] = rest
		order = append(order, name)
	}
	for _, name := range vmScenarios {
		r, ok := results[name]
		switch {
		case !ok:
			t.Errorf("%s: no result", name)
		case strings.HasPrefix(r, "ok"):
			t.Logf("%s: %s", name, r)
		default:
			t.Errorf("%s: %s", name, r)
		}
	}
	if _, ok := results["end"]; !ok || t.Failed() {
		t.Errorf("results %v; console:\n%s", order, console.String())
	}
}

// newc writes a cpio archive in the "new ASCII" format the kernel reads
// an initramfs in.
type newc struct {
	buf bytes.Buffer
	ino int
}

func (c *newc) entry(name string, mode, rdevMajor, rdevMinor int, data []byte) {
	c.ino++
	fmt.Fprintf(&c.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.buf.WriteString(name)
	c.buf.WriteByte(0)
	c.pad()
	c.buf.Write(data)
	c.pad()
}

func (c *newc) pad() {
	for c.buf.Len()%4 != 0 {
		c.buf.WriteByte(0)
	}
}

func (c *newc) dir(name string)                       { c.entry(name, 0o040755, 0, 0, nil) }
func (c *newc) file(name string, perm int, b []byte)  { c.entry(name, 0o100000|perm, 0, 0, b) }
func (c *newc) charDev(name string, major, minor int) { c.entry(name, 0o020600, major, minor, nil) }
func (c *newc) close() []byte                         { c.entry("TRAILER!!!", 0, 0, 0, nil); return c.buf.Bytes() }
