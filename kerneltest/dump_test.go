package kerneltest

import (
	"os"
	"strconv"
	"testing"
)

// TestGenerateDump writes Generate(KT_SEED) to stdout, to replay by hand;
// with KT_HOSTS=1 or 2, GenerateWide(KT_SEED, KT_HOSTS) instead.
func TestGenerateDump(t *testing.T) {
	s := os.Getenv("KT_SEED")
	if s == "" {
		t.Skip("set KT_SEED=N")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := strconv.Atoi(os.Getenv("KT_HOSTS")); err == nil {
		os.Stdout.WriteString(GenerateWide(n, h))
		return
	}
	os.Stdout.WriteString(Generate(n))
}
