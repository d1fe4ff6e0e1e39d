package cgroup

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// maxNameLen is the longest directory name the kernel accepts (NAME_MAX).
const maxNameLen = 255

// reservedPrefixes are the prefixes of the interface files cgroupfs puts in
// every directory ("cgroup.procs", "memory.max", ...). A child directory with
// the same name as such a file cannot be created, so an escaped name never
// looks like one.
var reservedPrefixes = []string{
	"cgroup", "cpu", "cpuacct", "cpuset", "memory", "pids", "io", "blkio",
	"freezer", "devices", "hugetlb", "rdma", "misc", "net_cls", "net_prio",
	"perf_event", "irq", "dmem",
}

// reservedNames are the v1 interface files whose names have no dot.
var reservedNames = []string{"tasks", "notify_on_release", "release_agent"}

// EscapeName turns a service name into the name of its cgroup directory.
// Bytes in [A-Za-z0-9._-] are kept and every other byte is percent-encoded
// (%XX, upper-case hex), so the result never contains "/" and the original
// name can be read back from it. A leading "." is encoded too, so the
// result is never "." or ".." and never starts with a dot (the name
// ".supervisor" is horust's own). A name that would clash with a cgroupfs
// interface file ("cpu.max", "tasks") gets its first dot, or its first
// letter, encoded. A result longer than the kernel's 255 bytes is cut and
// ends in "~" and 16 hex digits of the name's 64-bit FNV-1a hash, which
// keeps distinct names apart ("~" is never kept by the encoding; a hash
// from package crypto would link the crypto module into horust, whose
// initialization delays every start). The empty name stays
// empty.
func EscapeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if keep(c) && (c != '.' || i > 0) {
			b.WriteByte(c)
			continue
		}
		b.WriteString(encodeByte(c))
	}
	s := b.String()
	for _, r := range reservedNames {
		if s == r {
			s = encodeByte(s[0]) + s[1:]
		}
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(s, p+".") {
			s = p + "%2E" + s[len(p)+1:]
			break
		}
	}
	if len(s) > maxNameLen {
		h := fnv.New64a()
		_, _ = h.Write([]byte(name))
		cut := 200
		// Never cut through a %XX sequence.
		if i := strings.LastIndexByte(s[:cut], '%'); i >= cut-2 {
			cut = i
		}
		s = s[:cut] + "~" + fmt.Sprintf("%016x", h.Sum64())
	}
	return s
}

func keep(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

func encodeByte(c byte) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{'%', digits[c>>4], digits[c&15]})
}
