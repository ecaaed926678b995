package localstack

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CPUTimes is CPU time (user+system) by component: "fleetflow" is this
// process (workers, bridge, virtual fleet, embedded broker, bench client);
// the others are the stack's child process groups.
type CPUTimes map[string]time.Duration

// CPU reads the CPU time used so far by this process and by each of the
// stack's child processes from /proc (Linux; empty elsewhere). A process
// counts for a component when it is in that component's process group or
// descends from a process that is: PostgreSQL backends start sessions of
// their own, so the group alone misses them.
func (ls *Stack) CPU() CPUTimes {
	type procStat struct {
		ppid, pgrp int
		cpu        time.Duration
	}
	procs := map[int]procStat{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp … utime(14) stime(15); comm may hold spaces.
		s := string(raw)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(s[:end])[0])
		f := strings.Fields(s[end+1:])
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		procs[pid] = procStat{ppid: ppid, pgrp: pgrp, cpu: time.Duration(ut+st) * (time.Second / 100)} // USER_HZ is 100 on Linux
	}
	byGroup := map[int]string{}
	for name, pg := range ls.Services.ProcessGroups() {
		byGroup[pg] = name
	}
	self := os.Getpid()
	var owner func(pid, depth int) string
	owner = func(pid, depth int) string {
		p, ok := procs[pid]
		if !ok || depth > 16 {
			return ""
		}
		if pid == self {
			return "fleetflow"
		}
		if name := byGroup[p.pgrp]; name != "" {
			return name
		}
		return owner(p.ppid, depth+1)
	}
	t := CPUTimes{}
	for pid, p := range procs {
		if name := owner(pid, 0); name != "" && (pid == self || name != "fleetflow") {
			t[name] += p.cpu
		}
	}
	return t
}

// Sub is t minus base, per component.
func (t CPUTimes) Sub(base CPUTimes) CPUTimes {
	d := CPUTimes{}
	for k, v := range t {
		d[k] = v - base[k]
	}
	return d
}

// PerMission formats each component's CPU time divided by n missions.
func (t CPUTimes) PerMission(n int) string {
	if len(t) == 0 || n == 0 {
		return "not measured (needs /proc)"
	}
	names := make([]string, 0, len(t))
	for k := range t {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	var total time.Duration
	for _, k := range names {
		total += t[k]
		parts = append(parts, fmt.Sprintf("%s %.2f ms", k, float64(t[k].Microseconds())/1000/float64(n)))
	}
	return fmt.Sprintf("%s (total %.2f ms)", strings.Join(parts, ", "), float64(total.Microseconds())/1000/float64(n))
}
