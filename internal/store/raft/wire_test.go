package raft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

func request(kind byte, payload []byte) []byte {
	return appendFrame([]byte{kind}, payload)
}

func TestFrames(t *testing.T) {
	huge := binary.BigEndian.AppendUint32([]byte{tagForward}, maxRequest+1)
	tests := map[string]struct {
		in      []byte
		payload []byte
		err     error
	}{
		"forward":         {request(tagForward, []byte(`{"type":"x"}`)), []byte(`{"type":"x"}`), nil},
		"empty":           {request(tagStatus, nil), []byte{}, nil},
		"eof":             {nil, nil, io.EOF},
		"short header":    {[]byte{tagForward, 0, 0}, nil, io.ErrUnexpectedEOF},
		"short payload":   {request(tagForward, []byte("abc"))[:6], nil, io.ErrUnexpectedEOF},
		"too large":       {huge, nil, errFrameTooLarge},
		"claims too much": {binary.BigEndian.AppendUint32([]byte{tagForward}, 1<<20), nil, io.ErrUnexpectedEOF},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, p, err := readRequest(bytes.NewReader(tc.in))
			if !errors.Is(err, tc.err) || (err == nil && !bytes.Equal(p, tc.payload)) {
				t.Fatalf("readRequest: %q, %v; want %q, %v", p, err, tc.payload, tc.err)
			}
		})
	}
}

func TestForwardReply(t *testing.T) {
	for _, r := range []forwardReply{
		{Outcome: outcomeApplied, Index: 42},
		{Outcome: outcomeApplied, Index: 7, Code: "Exists", Message: "store: already exists"},
		{Outcome: outcomeNotApplied, Message: "not the leader"},
		{Outcome: outcomeUnknown, Message: "leadership lost"},
	} {
		got, err := parseForwardReply(r.marshal())
		if err != nil || got != r {
			t.Errorf("round trip of %+v: %+v, %v", r, got, err)
		}
	}
	long := forwardReply{Message: string(make([]byte, 2*maxMessage))}.marshal()
	if len(long) != 10+maxMessage {
		t.Errorf("a long message is not cut: %d bytes", len(long))
	}
	for _, b := range [][]byte{nil, {3, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'}} {
		if _, err := parseForwardReply(b); err == nil {
			t.Errorf("parseForwardReply(%v) succeeded", b)
		}
	}
}

// FuzzFrames feeds the link's parsers untrusted bytes (a peer is
// authenticated, but may be broken): a request that parses re-encodes to
// the bytes it was read from; a forward reply that parses re-encodes to its
// input; a status reply that parses re-parses the same.
func FuzzFrames(f *testing.F) {
	f.Add(request(tagForward, []byte(`{"type":"PutRegionValue","payload":{}}`)))
	f.Add(request(tagStatus, nil))
	f.Add(forwardReply{Outcome: outcomeApplied, Index: 3, Code: "Conflict", Message: "m"}.marshal())
	f.Add(statusReply{ID: "n1", Applied: 9, LastContactMs: -1, LeaderID: "n0"}.marshal())
	f.Add([]byte{tagForward, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		kind, p, err := readRequest(r)
		if err == nil {
			n := len(b) - r.Len()
			if len(p) > maxRequest || !bytes.Equal(request(kind, p), b[:n]) {
				t.Fatalf("request %q (kind %q) does not re-encode to %q", p, kind, b[:n])
			}
		} else if p != nil || kind != 0 {
			t.Fatalf("a failed readRequest returned %q, %q", kind, p)
		}
		if fr, err := parseForwardReply(b); err == nil {
			if !bytes.Equal(fr.marshal(), b) {
				t.Fatalf("forward reply %+v does not re-encode to %q", fr, b)
			}
		} else if fr != (forwardReply{}) {
			t.Fatalf("a failed parseForwardReply returned %+v", fr)
		}
		if st, err := parseStatusReply(b); err == nil {
			again, err := parseStatusReply(st.marshal())
			if err != nil || !reflect.DeepEqual(again, st) {
				t.Fatalf("status %+v re-parses as %+v, %v", st, again, err)
			}
		} else if st != (statusReply{}) {
			t.Fatalf("a failed parseStatusReply returned %+v", st)
		}
	})
}
