//go:build !unix

package devstate

import "os"

// Without flock, no lock: metro dev runs as before.
func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) {}
