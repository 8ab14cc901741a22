package kerneltest

import "github.com/socktab/socktab/scenario"

// Classes of disagreement found by the wide replay, reproduced by hand and
// not yet modelled by the engine. A wide group counts a scenario whose first
// disagreement falls in one of them as "known" instead of failing; every
// other disagreement fails. Remove a class once the engine models it, so the
// replay proves the fix.
//
// None is listed today: the five classes of issue 7 and the last one found
// with them (a UDP socket keeps the source of its first connect, so a later
// connect from a loopback source towards another host is EINVAL;
// testdata/replay/udp-connect-keeps-source.scenario) are modelled. To list
// a new class, recognise it here from the steps before m (see git history
// for the shape this took).

// KnownClass names the known class that the disagreement m falls in, or
// "". It looks only at what the scenario did before m.
func KnownClass(sc *scenario.Scenario, kern []Result, m Mismatch) string {
	return ""
}
