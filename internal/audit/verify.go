package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// VerifyError is a line that breaks the chain. Line counts from 1 in the
// file being verified.
type VerifyError struct {
	Line   int    // the line, from 1, in the file being verified
	Reason string // why it breaks the chain
}

// Error implements error.
func (e *VerifyError) Error() string {
	return fmt.Sprintf("audit: line %d: %s", e.Line, e.Reason)
}

// Verifier checks a chain that may go on over several files (rotated ones
// first, oldest first, then the current one). The zero value expects the
// first line of a log (seq 1, prevHash of zeros).
type Verifier struct {
	// Partial accepts a first line that does not start the log (older
	// rotated files were deleted): its seq and prevHash are taken as
	// given, and what came before it cannot be checked.
	Partial bool

	first uint64 // seq of the first line checked
	seq   uint64 // of the last line checked
	last  string // its hash ("" before any line)
	lines int    // lines checked so far, over every file
}

// Verify checks one log file read from r; see [Verifier.Verify].
func Verify(r io.Reader) (lines int, err error) {
	var v Verifier
	return v.Verify(r)
}

// Verify checks the lines read from r as the continuation of the lines
// checked before, and returns how many lines r held. The first error is a
// [*VerifyError] naming the first line that breaks the chain (or an I/O
// error of r); a line that was changed is named by the line after it, whose
// prevHash no longer matches. An empty r is valid.
func (v *Verifier) Verify(r io.Reader) (lines int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, complete, err := readLine(br)
		if err != nil {
			return lines, err
		}
		if line == nil && complete {
			return lines, nil // end of input
		}
		lines++
		fail := func(format string, args ...any) (int, error) {
			return lines, &VerifyError{Line: lines, Reason: fmt.Sprintf(format, args...)}
		}
		if !complete {
			if len(line) > maxLine {
				return fail("longer than %d bytes: not an audit line", maxLine)
			}
			return fail("incomplete: no newline at its end (the file was cut, or its writer stopped mid-line)")
		}
		if len(line) == 0 {
			return fail("empty line (lines were joined or split)")
		}
		h, err := parseHeader(line)
		if err != nil {
			return fail("%s", err)
		}
		prev := v.last
		if prev == "" {
			prev = ZeroHash
		}
		if v.lines == 0 && v.Partial {
			v.seq, v.last = h.seq-1, h.prevHash
			prev = h.prevHash
		}
		switch {
		case v.lines == 0 && !v.Partial && (h.seq != 1 || h.prevHash != ZeroHash):
			return fail("the first line has seq %d and a prevHash that is not zeros: the log's first lines were removed, or this file continues another (give the files in order from the first)", h.seq)
		case h.seq != v.seq+1:
			return fail("seq is %d where %d was expected (a line was removed, inserted or reordered)", h.seq, v.seq+1)
		case h.prevHash != prev && lines == 1:
			return fail("hash does not match the last line of the previous file (a line was changed, removed or reordered)")
		case h.prevHash != prev:
			return fail("hash does not match line %d (a line was changed, removed or reordered)", lines-1)
		}
		if v.lines == 0 {
			v.first = h.seq
		}
		v.seq, v.last = h.seq, hashLine(line)
		v.lines++
	}
}

// Last returns the seq and hash of the last line checked: compare them with
// an anchor kept elsewhere to find a cut or rewritten tail.
func (v *Verifier) Last() (seq uint64, hash string) {
	if v.last == "" {
		return 0, ZeroHash
	}
	return v.seq, v.last
}

// First returns the seq of the first line checked (0 before any): 1
// unless Partial accepted a log whose start is gone.
func (v *Verifier) First() uint64 { return v.first }

// Lines is the number of lines checked, over every file.
func (v *Verifier) Lines() int { return v.lines }

// readLine returns the next line without its newline, and whether it ended
// with one. At the end of input it returns nil, true. A line longer than
// maxLine is returned cut, as incomplete.
func readLine(br *bufio.Reader) ([]byte, bool, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		switch {
		case err == nil:
			return line[:len(line)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(line) > maxLine {
				return line, false, nil
			}
		case err == io.EOF:
			if len(line) == 0 {
				return nil, true, nil
			}
			return line, false, nil
		default:
			return nil, false, err
		}
	}
}

type header struct {
	seq      uint64
	prevHash string
}

// parseHeader reads the chain fields of a line.
func parseHeader(line []byte) (header, error) {
	if len(line) == 0 || line[0] != '{' {
		return header{}, errors.New("is not a JSON object")
	}
	var h struct {
		Seq      *uint64 `json:"seq"`
		PrevHash *string `json:"prevHash"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&h); err != nil {
		return header{}, errors.New("is not valid JSON")
	}
	if dec.More() {
		return header{}, errors.New("has data after its JSON object")
	}
	switch {
	case h.Seq == nil || *h.Seq == 0:
		return header{}, errors.New("has no seq")
	case h.PrevHash == nil:
		return header{}, errors.New("has no prevHash")
	case !isHash(*h.PrevHash):
		return header{}, errors.New("has a prevHash that is not 64 lower-case hex digits")
	}
	return header{seq: *h.Seq, prevHash: *h.PrevHash}, nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
