package identity

import (
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
)

// ECDSA signatures are malleable: if (R, S) is a valid signature, so is
// (R, N-S). The region's own issuer emits only the low form (S ≤ N/2; Go's
// ECDSA signs with either) and its tokens are accepted only in that form,
// so that one token has one encoding. Tokens of trusted external issuers
// are accepted in both forms: Dex (Go) and Keycloak (Java) sign ES256
// without normalising S, and refusing high S would refuse about half of
// their tokens. A token with the other S is still signed by the issuer, for
// the same claims: it grants nothing the original does not.

// highS reports whether the raw JWS signature R ‖ S made with pub has
// S > N/2.
func highS(pub *ecdsa.PublicKey, sig []byte) bool {
	if len(sig)%2 != 0 {
		return true // not a JWS ECDSA signature: Verify refuses it too
	}
	s := new(big.Int).SetBytes(sig[len(sig)/2:])
	return s.Cmp(new(big.Int).Rsh(pub.Curve.Params().N, 1)) > 0
}

// lowSCompact returns a compact JWS signed by pub with its signature in low
// form.
func lowSCompact(pub *ecdsa.PublicKey, token string) (string, error) {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return "", errors.New("identity: not a compact JWS")
	}
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig)%2 != 0 {
		return "", errors.New("identity: not an ECDSA JWS signature")
	}
	if !highS(pub, sig) {
		return token, nil
	}
	n := len(sig) / 2
	s := new(big.Int).SetBytes(sig[n:])
	s.Sub(pub.Curve.Params().N, s)
	s.FillBytes(sig[n:])
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(sig), nil
}
