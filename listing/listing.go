// Package listing is the JSON schema of one socket as `socktab ls -o json`
// prints it, for the CLI, the exporter and memnet, so that a socket reads
// the same wherever it is listed. The schema itself lives in package
// report (with the rest of the -o json answers); these are its names.
package listing

import (
	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
)

// Socket is the -o json schema of a socket (report.Socket).
type Socket = report.Socket

// Process is one holder of a socket (report.Process).
type Process = report.Process

// FromLive is the listing of a socket read from the kernel; Processes is
// null unless the socket has holders.
func FromLive(s *live.Socket) Socket { return report.FromLive(s, len(s.Processes) > 0) }
