package identity

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// TokenLabels are the parts of a bearer token an operator may see in a
// log when it is refused: its issuer, audiences and key id, read without
// verification (so they are only what the token claims). The token itself,
// its signature and its other claims are never part of them.
type TokenLabels struct {
	Issuer   string
	Audience []string
	KeyID    string
}

// DescribeToken reads the [TokenLabels] of a compact JWS; fields it cannot
// read stay empty. Every value is clipped to 200 bytes.
func DescribeToken(token string) TokenLabels {
	var l TokenLabels
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return l
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil && json.Unmarshal(b, &hdr) == nil {
		l.KeyID = clipLabel(hdr.Kid)
	}
	var claims struct {
		Iss string          `json:"iss"`
		Aud json.RawMessage `json:"aud"`
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(b, &claims) != nil {
		return l
	}
	l.Issuer = clipLabel(claims.Iss)
	var one string
	var many []string
	switch {
	case json.Unmarshal(claims.Aud, &one) == nil:
		l.Audience = []string{clipLabel(one)}
	case json.Unmarshal(claims.Aud, &many) == nil:
		for i, a := range many {
			if i == 5 {
				break
			}
			l.Audience = append(l.Audience, clipLabel(a))
		}
	}
	return l
}

func clipLabel(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}
