package metrotest

import "math/rand/v2"

// Bytes is n bytes that no compression can shrink and no off-by-one can
// hide: a body for checking that a transfer arrives byte for byte. The
// same n gives the same bytes.
func Bytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
