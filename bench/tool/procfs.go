package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// pinfo is one process as /proc/PID/stat shows it.
type pinfo struct {
	pid, ppid int
	state     byte
	comm      string
}

// parseStat parses the content of /proc/PID/stat (the comm may hold spaces
// and parentheses, so the fields after it are found from the last ')').
func parseStat(b []byte) (pinfo, bool) {
	lp, rp := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if lp < 0 || rp < lp {
		return pinfo{}, false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:lp])))
	if err != nil {
		return pinfo{}, false
	}
	f := bytes.Fields(b[rp+1:])
	if len(f) < 2 {
		return pinfo{}, false
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	return pinfo{pid: pid, ppid: ppid, state: f[0][0], comm: string(b[lp+1 : rp])}, true
}

// scanProcs reads every /proc/PID/stat.
func scanProcs() map[int]pinfo {
	m := make(map[int]pinfo, 1024)
	d, err := os.Open("/proc")
	if err != nil {
		return m
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	buf := make([]byte, 1024)
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		f, err := os.Open("/proc/" + n + "/stat")
		if err != nil {
			continue
		}
		k, _ := f.Read(buf)
		f.Close()
		if p, ok := parseStat(buf[:max(k, 0)]); ok {
			m[p.pid] = p
		}
	}
	return m
}

// subtree lists the processes below root (and root itself when withRoot),
// parents before children.
func subtree(all map[int]pinfo, root int, withRoot bool) []pinfo {
	kids := map[int][]int{}
	for _, p := range all {
		kids[p.ppid] = append(kids[p.ppid], p.pid)
	}
	var res []pinfo
	if p, ok := all[root]; ok && withRoot {
		res = append(res, p)
	}
	queue := []int{root}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, k := range kids[cur] {
			if k == cur {
				continue
			}
			res = append(res, all[k])
			queue = append(queue, k)
		}
	}
	return res
}

// countLive counts live processes named comm in ps.
func countLive(ps []pinfo, comm string) int {
	n := 0
	for _, p := range ps {
		if p.comm == comm && p.state != 'Z' {
			n++
		}
	}
	return n
}

// kvInt reads the integer after key in a "Key:   value kB" file.
func kvInt(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// usage is what a process costs: PSS, context switches and CPU of all its
// threads.
type usage struct {
	pssKB, rssKB int64
	ctxsw        int64
	cpuNS        int64 // sum of the threads' schedstat run time
	threads      int
}

// sampleUsage reads a process's PSS, RSS, and per-thread context switches
// and CPU time (schedstat, ns).
func sampleUsage(pid int) usage {
	base := "/proc/" + strconv.Itoa(pid)
	u := usage{pssKB: kvInt(base+"/smaps_rollup", "Pss:"), rssKB: kvInt(base+"/status", "VmRSS:")}
	tasks, _ := os.ReadDir(base + "/task")
	for _, t := range tasks {
		td := base + "/task/" + t.Name()
		u.ctxsw += kvInt(td+"/status", "voluntary_ctxt_switches:") + kvInt(td+"/status", "nonvoluntary_ctxt_switches:")
		if b, err := os.ReadFile(td + "/schedstat"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				u.cpuNS += v
			}
		}
		u.threads++
	}
	return u
}

// procCPUSeconds is utime+stime of a process (all its threads, dead ones
// included, children excluded) in seconds, at clock-tick resolution.
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	rp := bytes.LastIndexByte(b, ')')
	if rp < 0 {
		return 0
	}
	f := bytes.Fields(b[rp+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return float64(ut+st) / 100 // USER_HZ is 100 on Linux
}
