package keywrap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"math"
)

// ErrInvalidKeySize is returned when the KEK is not 16, 24 or 32 bytes long.
var ErrInvalidKeySize = errors.New("keywrap: invalid key size")

// ErrInvalidLength is returned when the data to wrap or unwrap has a length
// the algorithm does not accept: for [Wrap] a multiple of 8 bytes, at least
// 16; for [Unwrap] a multiple of 8 bytes, at least 24; for [WrapPad] 1 byte
// to 2³²−1 bytes; for [UnwrapPad] a multiple of 8 bytes, at least 16.
var ErrInvalidLength = errors.New("keywrap: invalid input length")

// ErrUnwrap is returned by [Unwrap] and [UnwrapPad] when the integrity check
// fails: the ciphertext was altered, or was wrapped under another KEK, or (for
// [UnwrapPad]) its length indicator or padding is wrong. It carries no detail
// on purpose.
var ErrUnwrap = errors.New("keywrap: integrity check failed")

// defaultIV is the RFC 3394 §2.2.3.1 initial value.
var defaultIV = [8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}

// kwpIVPrefix is the RFC 5649 §3 alternative initial value's constant half.
var kwpIVPrefix = [4]byte{0xA6, 0x59, 0x59, 0xA6}

func newCipher(kek []byte) (cipher.Block, error) {
	switch len(kek) {
	case 16, 24, 32:
	default:
		return nil, ErrInvalidKeySize
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, ErrInvalidKeySize
	}
	return b, nil
}

// Wrap wraps plaintext under kek with the AES Key Wrap algorithm of RFC 3394
// (the index-based form of §2.2.1). kek must be 16, 24 or 32 bytes; plaintext
// must be a multiple of 8 bytes and at least 16 bytes. The result is 8 bytes
// longer than plaintext.
func Wrap(kek, plaintext []byte) ([]byte, error) {
	b, err := newCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(plaintext) < 16 || len(plaintext)%8 != 0 {
		return nil, ErrInvalidLength
	}
	return wrap(b, defaultIV, plaintext), nil
}

// Unwrap reverses [Wrap]. kek must be 16, 24 or 32 bytes; ciphertext must be
// a multiple of 8 bytes and at least 24 bytes. If the integrity check fails it
// returns [ErrUnwrap] and no plaintext.
func Unwrap(kek, ciphertext []byte) ([]byte, error) {
	b, err := newCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < 24 || len(ciphertext)%8 != 0 {
		return nil, ErrInvalidLength
	}
	a, out := unwrap(b, ciphertext)
	if subtle.ConstantTimeCompare(a[:], defaultIV[:]) != 1 {
		clear(out)
		return nil, ErrUnwrap
	}
	return out, nil
}

// WrapPad wraps plaintext under kek with the AES Key Wrap with Padding
// algorithm of RFC 5649. kek must be 16, 24 or 32 bytes; plaintext may have
// any length from 1 to 2³²−1 bytes. The result is the plaintext length
// rounded up to a multiple of 8, plus 8 bytes.
func WrapPad(kek, plaintext []byte) ([]byte, error) {
	b, err := newCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(plaintext) == 0 || uint64(len(plaintext)) > math.MaxUint32 {
		return nil, ErrInvalidLength
	}
	var iv [8]byte
	copy(iv[:4], kwpIVPrefix[:])
	binary.BigEndian.PutUint32(iv[4:], uint32(len(plaintext)))
	padded := make([]byte, (len(plaintext)+7)/8*8)
	copy(padded, plaintext)
	defer clear(padded)
	if len(padded) == 8 {
		// RFC 5649 §4.1: a single semiblock is encrypted with AES in ECB mode.
		out := make([]byte, 16)
		copy(out, iv[:])
		copy(out[8:], padded)
		b.Encrypt(out, out)
		return out, nil
	}
	return wrap(b, iv, padded), nil
}

// UnwrapPad reverses [WrapPad]. kek must be 16, 24 or 32 bytes; ciphertext
// must be a multiple of 8 bytes and at least 16 bytes. If the integrity check
// (initial value, length indicator or padding) fails it returns [ErrUnwrap]
// and no plaintext.
func UnwrapPad(kek, ciphertext []byte) ([]byte, error) {
	b, err := newCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < 16 || len(ciphertext)%8 != 0 {
		return nil, ErrInvalidLength
	}
	var a [8]byte
	var padded []byte
	if len(ciphertext) == 16 {
		var block [16]byte
		b.Decrypt(block[:], ciphertext)
		copy(a[:], block[:8])
		padded = make([]byte, 8)
		copy(padded, block[8:])
		clear(block[:])
	} else {
		a, padded = unwrap(b, ciphertext)
	}
	// RFC 5649 §3: the initial value is A65959A6 || MLI with
	// 8·(n−1) < MLI ≤ 8·n for n semiblocks of padded plaintext. All failures
	// give the same error.
	mli := uint64(binary.BigEndian.Uint32(a[4:]))
	size := uint64(len(padded))
	if subtle.ConstantTimeCompare(a[:4], kwpIVPrefix[:]) != 1 || mli+8 <= size || mli > size {
		clear(padded)
		return nil, ErrUnwrap
	}
	// The padding bytes must be zero.
	var nonzero byte
	for _, c := range padded[mli:] {
		nonzero |= c
	}
	if nonzero != 0 {
		clear(padded)
		return nil, ErrUnwrap
	}
	out := padded[:mli:mli]
	return out, nil
}

// wrap runs the RFC 3394 §2.2.1 wrapping process W with initial value iv over
// the semiblocks of p (len(p) a multiple of 8, at least 16).
func wrap(b cipher.Block, iv [8]byte, p []byte) []byte {
	n := len(p) / 8
	out := make([]byte, 8+len(p))
	copy(out[8:], p)
	var block [16]byte
	copy(block[:8], iv[:])
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			r := out[8*i : 8*i+8]
			copy(block[8:], r)
			b.Encrypt(block[:], block[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(block[:8], binary.BigEndian.Uint64(block[:8])^t)
			copy(r, block[8:])
		}
	}
	copy(out[:8], block[:8])
	clear(block[:])
	return out
}

// unwrap runs the RFC 3394 §2.2.2 unwrapping process W⁻¹ over c (len(c) a
// multiple of 8, at least 24) and returns the recovered initial value and the
// plaintext semiblocks. The caller checks the initial value.
func unwrap(b cipher.Block, c []byte) (a [8]byte, p []byte) {
	n := len(c)/8 - 1
	p = make([]byte, len(c)-8)
	copy(p, c[8:])
	var block [16]byte
	copy(block[:8], c[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			r := p[8*(i-1) : 8*i]
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(block[:8], binary.BigEndian.Uint64(block[:8])^t)
			copy(block[8:], r)
			b.Decrypt(block[:], block[:])
			copy(r, block[8:])
		}
	}
	copy(a[:], block[:8])
	clear(block[:])
	return a, p
}
