// Package docs carries the user documentation that socktab prints itself:
// `socktab help scenario` is docs/scenario.md.
package docs

import _ "embed"

// Scenario is the scenario language reference (docs/scenario.md).
//
//go:embed scenario.md
var Scenario string
