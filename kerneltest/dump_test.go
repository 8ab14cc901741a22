package kerneltest

import (
	"os"
	"strconv"
	"testing"
)

// TestGenerateDump writes Generate(KT_SEED) to stdout, to replay by hand.
func TestGenerateDump(t *testing.T) {
	s := os.Getenv("KT_SEED")
	if s == "" {
		t.Skip("set KT_SEED=N")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString(Generate(n))
}
