package raft

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The cluster link's own RPCs. A connection opens with a tag byte: tagRaft
// hands it to raft's transport; any other tag is the kind of the first of a
// sequence of requests, each
//
//	kind (1 byte) | length (4 bytes, big endian) | payload
//
// (the first request's kind is the tag), each answered by
//
//	length (4 bytes, big endian) | payload
//
// A forward request's payload is an encoded command ([store.Encode]); its
// reply is a [forwardReply]. A status request's payload is empty; its reply
// is a [statusReply] in JSON.
const (
	tagRaft    = 'R'
	tagForward = 'F'
	tagStatus  = 'S'
)

// Frame limits: a command may be large (a StageValues chunk of a few MiB);
// replies are small.
const (
	maxRequest = 64 << 20
	maxReply   = 1 << 20
	maxMessage = 4 << 10 // an error message in a forward reply
)

var errFrameTooLarge = errors.New("raft: frame too large")

// readFrame reads a length-prefixed frame of at most limit bytes. The buffer
// grows with the bytes that arrive, not with the length claimed.
func readFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(limit) {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", errFrameTooLarge, n, limit)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(n, 64<<10)))
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// appendFrame appends p as a length-prefixed frame.
func appendFrame(dst, p []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p)))
	return append(dst, p...)
}

// readRequest reads the next request of a connection: its kind byte, then
// its frame.
func readRequest(r io.Reader) (kind byte, payload []byte, err error) {
	var k [1]byte
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return 0, nil, err
	}
	payload, err = readFrame(r, maxRequest)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return k[0], payload, nil
}

// Outcomes of a forwarded command.
const (
	outcomeApplied    = 0 // applied at Index; Code and Message are the command's error ("" = none)
	outcomeNotApplied = 1 // the leader did not take the command (not the leader any more, …): safe to retry
	outcomeUnknown    = 2 // the leader took it but cannot tell whether it committed
)

// forwardReply is the leader's answer to a forwarded command:
//
//	outcome (1) | index (8) | code length (1) | code | message (the rest)
type forwardReply struct {
	Outcome byte
	Index   uint64
	Code    string
	Message string
}

func (f forwardReply) marshal() []byte {
	code, msg := f.Code, f.Message
	if len(code) > 255 {
		code = code[:255]
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	b := make([]byte, 0, 10+len(code)+len(msg))
	b = append(b, f.Outcome)
	b = binary.BigEndian.AppendUint64(b, f.Index)
	b = append(b, byte(len(code)))
	b = append(b, code...)
	return append(b, msg...)
}

var errBadReply = errors.New("raft: malformed reply")

func parseForwardReply(b []byte) (forwardReply, error) {
	if len(b) < 10 || b[0] > outcomeUnknown {
		return forwardReply{}, errBadReply
	}
	n := int(b[9])
	if len(b) < 10+n || len(b)-10-n > maxMessage {
		return forwardReply{}, errBadReply
	}
	return forwardReply{
		Outcome: b[0],
		Index:   binary.BigEndian.Uint64(b[1:9]),
		Code:    string(b[10 : 10+n]),
		Message: string(b[10+n:]),
	}, nil
}

// statusReply is a node's answer to a status request.
type statusReply struct {
	ID      string `json:"id"`
	Applied uint64 `json:"applied"`
	// LastContactMs is the time since the node last heard from a leader (0
	// on the leader; -1 if it never has).
	LastContactMs int64  `json:"lastContactMs"`
	Leader        bool   `json:"leader"`
	LeaderID      string `json:"leaderId,omitempty"`
}

func parseStatusReply(b []byte) (statusReply, error) {
	var s statusReply
	if err := json.Unmarshal(b, &s); err != nil {
		return statusReply{}, fmt.Errorf("%w: %v", errBadReply, err)
	}
	if s.ID == "" || s.LastContactMs < -1 {
		return statusReply{}, errBadReply
	}
	return s, nil
}
