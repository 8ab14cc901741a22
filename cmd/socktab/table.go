package main

import (
	"bufio"
	"io"
	"unicode/utf8"
)

// table prints aligned columns. Unlike text/tabwriter it keeps cells as
// strings and writes each row once, which matters at 100,000 rows.
type table struct {
	w     io.Writer
	rows  [][]string
	width []int
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: w, width: make([]int, len(header))}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if n := utf8.RuneCountInString(c); n > t.width[i] {
			t.width[i] = n
		}
	}
	t.rows = append(t.rows, cells)
}

func (t *table) flush() error {
	bw := bufio.NewWriterSize(t.w, 64<<10)
	pad := make([]byte, 0, 256)
	for _, r := range t.rows {
		for i, c := range r {
			bw.WriteString(c)
			if i == len(r)-1 || (i == len(r)-2 && r[i+1] == "") {
				break
			}
			n := t.width[i] - utf8.RuneCountInString(c) + 2
			pad = pad[:0]
			for ; n > 0; n-- {
				pad = append(pad, ' ')
			}
			bw.Write(pad)
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
