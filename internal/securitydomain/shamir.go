package securitydomain

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Shamir secret sharing, byte by byte over GF(257), as the security domain
// uses it. Share i (0-based) has x = i+1; each secret byte becomes one
// little-endian 16-bit word (x<<9)|v with v = f(x) in [0,256].

const (
	prime = 257
	// MaxShares is the largest number of shares [Split] makes: x must fit in
	// the top 7 bits of a share word and the format caps it at 126.
	MaxShares = 126
)

// Split shares secret among n custodians so that any required of them can
// rebuild it with [Combine] and fewer learn nothing. Each share is
// 2*len(secret) bytes. Coefficients are read from rand, or crypto/rand when
// rand is nil. It needs 2 <= required <= n <= [MaxShares] and a non-empty
// secret.
func Split(secret []byte, required, n int, rand io.Reader) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, errors.New("securitydomain: shamir: empty secret")
	case required < 2:
		return nil, errors.New("securitydomain: shamir: required must be at least 2")
	case n < required:
		return nil, errors.New("securitydomain: shamir: fewer shares than required")
	case n > MaxShares:
		return nil, fmt.Errorf("securitydomain: shamir: at most %d shares", MaxShares)
	}
	r := randOrDefault(rand)
	shares := make([][]byte, n)
	for i := range shares {
		shares[i] = make([]byte, 2*len(secret))
	}
	coeffs := make([]uint32, required) // coeffs[0] is the highest degree; coeffs[required-1] = secret byte
	defer clear(coeffs)
	for j, s := range secret {
		for c := 0; c < required-1; c++ {
			v, err := randomElement(r)
			if err != nil {
				return nil, err
			}
			coeffs[c] = v
		}
		coeffs[required-1] = uint32(s)
		for i := range n {
			x := uint32(i + 1)
			var v uint32
			for _, c := range coeffs {
				v = (v*x + c) % prime
			}
			binary.LittleEndian.PutUint16(shares[i][2*j:], uint16(x<<9|v))
		}
	}
	return shares, nil
}

// randomElement returns a uniform element of GF(257) by rejection sampling.
func randomElement(r io.Reader) (uint32, error) {
	var b [2]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, fmt.Errorf("securitydomain: reading randomness: %w", err)
		}
		if v := uint32(binary.LittleEndian.Uint16(b[:]) & 0x1ff); v < prime {
			return v, nil
		}
	}
}

// Combine rebuilds a secret from shares made by [Split] (or by Azure). It
// uses every share given, so pass exactly the quorum or more: with fewer
// than the quorum it returns a wrong value (or an error), which it cannot
// detect. It rejects fewer than 2 shares, shares of different or odd
// lengths, words whose x is 0 or varies within a share, duplicate x, values
// above 256, and results that do not fit in a byte.
func Combine(shares [][]byte) ([]byte, error) {
	if len(shares) < 2 {
		return nil, errors.New("securitydomain: shamir: at least 2 shares are needed")
	}
	size := len(shares[0])
	if size == 0 || size%2 != 0 {
		return nil, errors.New("securitydomain: shamir: share length must be even and non-zero")
	}
	xs := make([]uint32, len(shares))
	seen := make(map[uint32]bool, len(shares))
	for i, sh := range shares {
		if len(sh) != size {
			return nil, errors.New("securitydomain: shamir: shares have different lengths")
		}
		for j := 0; j < size; j += 2 {
			w := binary.LittleEndian.Uint16(sh[j:])
			x, v := uint32(w>>9), uint32(w&0x1ff)
			if v >= prime {
				return nil, fmt.Errorf("securitydomain: shamir: share %d: value out of range", i)
			}
			if j == 0 {
				if x == 0 {
					return nil, fmt.Errorf("securitydomain: shamir: share %d: x is 0", i)
				}
				xs[i] = x
			} else if x != xs[i] {
				return nil, fmt.Errorf("securitydomain: shamir: share %d: x differs between words", i)
			}
		}
		if seen[xs[i]] {
			return nil, fmt.Errorf("securitydomain: shamir: duplicate share x = %d", xs[i])
		}
		seen[xs[i]] = true
	}
	// Lagrange basis at 0: l_i = Π_{m≠i} x_m / (x_m − x_i).
	basis := make([]uint32, len(shares))
	for i, xi := range xs {
		num, den := uint32(1), uint32(1)
		for m, xm := range xs {
			if m == i {
				continue
			}
			num = num * xm % prime
			den = den * ((xm + prime - xi) % prime) % prime
		}
		basis[i] = num * inverse(den) % prime
	}
	secret := make([]byte, size/2)
	for j := range secret {
		var s uint32
		for i, sh := range shares {
			v := uint32(binary.LittleEndian.Uint16(sh[2*j:]) & 0x1ff)
			s = (s + v*basis[i]) % prime
		}
		if s > 255 {
			clear(secret)
			return nil, errors.New("securitydomain: shamir: shares are inconsistent")
		}
		secret[j] = byte(s)
	}
	return secret, nil
}

// inverse returns a^-1 mod 257 as a^255 (Fermat); a must be non-zero.
func inverse(a uint32) uint32 {
	result, base := uint32(1), a%prime
	for e := prime - 2; e > 0; e >>= 1 {
		if e&1 == 1 {
			result = result * base % prime
		}
		base = base * base % prime
	}
	return result
}

func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}
