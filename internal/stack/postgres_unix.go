//go:build unix

package stack

import (
	"os"
	"syscall"
)

// searchable reports whether who may enter the directory described by fi.
func searchable(fi os.FileInfo, who *runAs) bool {
	m := fi.Mode().Perm()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		switch {
		case st.Uid == who.uid:
			return m&0o100 != 0
		case st.Gid == who.gid:
			return m&0o010 != 0
		}
	}
	return m&0o001 != 0
}
