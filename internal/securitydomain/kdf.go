package securitydomain

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
)

// KDF derives bits bits of key material from key with NIST SP 800-108
// counter mode, PRF HMAC-SHA-512, as the security domain uses it:
//
//	K(1) = HMAC-SHA-512(key, BE32(1) ‖ label ‖ 0x00 ‖ context ‖ BE32(bits))
//
// Only one PRF block is supported, so bits must be a positive multiple of 8
// no greater than 512. The CEK of a tagged blob is KDF(master, tag, "", 512).
func KDF(key []byte, label, context string, bits int) ([]byte, error) {
	if bits <= 0 || bits > 512 || bits%8 != 0 {
		return nil, errors.New("securitydomain: kdf output length must be a multiple of 8 bits between 8 and 512")
	}
	mac := hmac.New(sha512.New, key)
	var be [4]byte
	binary.BigEndian.PutUint32(be[:], 1)
	mac.Write(be[:])
	mac.Write([]byte(label))
	mac.Write([]byte{0})
	mac.Write([]byte(context))
	binary.BigEndian.PutUint32(be[:], uint32(bits))
	mac.Write(be[:])
	return mac.Sum(nil)[:bits/8], nil
}

// blobKey returns the 64-byte CEK of the blob tagged tag.
func blobKey(master []byte, tag string) []byte {
	cek, err := KDF(master, tag, "", 512)
	if err != nil {
		panic("securitydomain: unreachable: " + err.Error())
	}
	return cek
}
