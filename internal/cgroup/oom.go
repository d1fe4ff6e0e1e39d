package cgroup

import "fmt"

// OOMReason explains a service's SIGKILL death that OOMKills counted:
// "killed: out of memory (limit 100 MiB)", or without the parenthesis when
// limit is 0.
func OOMReason(limit uint64) string {
	if limit == 0 {
		return "killed: out of memory"
	}
	return fmt.Sprintf("killed: out of memory (limit %s)", FormatSize(limit))
}

// FormatSize writes a byte count the way a user wrote it: an exact multiple
// of a binary unit as "100 MiB", else of a decimal unit as "100 MB", else
// one decimal of the largest binary unit that fits ("95.4 MiB"), and bytes
// below 1 KiB ("512 B").
func FormatSize(n uint64) string {
	binary := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	decimal := []string{"KB", "MB", "GB", "TB", "PB", "EB"}
	for i := len(binary) - 1; i >= 0; i-- {
		u := uint64(1) << (10 * (i + 1))
		if n >= u && n%u == 0 {
			return fmt.Sprintf("%d %s", n/u, binary[i])
		}
	}
	for i := len(decimal) - 1; i >= 0; i-- {
		u := pow10(3 * (i + 1))
		if n >= u && n%u == 0 {
			return fmt.Sprintf("%d %s", n/u, decimal[i])
		}
	}
	for i := len(binary) - 1; i >= 0; i-- {
		u := uint64(1) << (10 * (i + 1))
		if n >= u {
			return fmt.Sprintf("%.1f %s", float64(n)/float64(u), binary[i])
		}
	}
	return fmt.Sprintf("%d B", n)
}

func pow10(e int) uint64 {
	n := uint64(1)
	for range e {
		n *= 10
	}
	return n
}
