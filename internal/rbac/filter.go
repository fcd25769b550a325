package rbac

import (
	"strings"

	"tresor/internal/fault"
)

// AssignmentFilter is a parsed $filter of a role assignment list.
type AssignmentFilter struct {
	// AtScope keeps the assignments at or above the listed scope (atScope()).
	AtScope bool
	// PrincipalID keeps one principal's assignments (principalId eq '…' or
	// assignedTo('…')); lower case.
	PrincipalID string
}

// RoleFilter is a parsed $filter of a role definition list.
type RoleFilter struct {
	RoleName string // roleName eq '…'
	Type     string // type eq '…': AKVBuiltInRole or CustomRole
}

// ParseAssignmentFilter parses the $filter of a role assignment list, in
// the OData subset ARM's role assignments take: "atScope()",
// "principalId eq '{guid}'", "assignedTo('{guid}')", joined by "and".
// An empty filter keeps everything.
func ParseAssignmentFilter(s string) (AssignmentFilter, error) {
	var f AssignmentFilter
	terms, err := parseFilter(s)
	if err != nil {
		return f, err
	}
	for _, t := range terms {
		switch {
		case t.fn && strings.EqualFold(t.name, "atScope") && !t.hasArg:
			f.AtScope = true
		case (t.fn && strings.EqualFold(t.name, "assignedTo") || !t.fn && strings.EqualFold(t.name, "principalId")) && t.hasArg:
			if !IsGUID(t.arg) {
				return f, badFilter(s, "'"+t.arg+"' is not a principal's object id (a GUID)")
			}
			if f.PrincipalID != "" && !strings.EqualFold(f.PrincipalID, t.arg) {
				return f, badFilter(s, "it names two principals")
			}
			f.PrincipalID = strings.ToLower(t.arg)
		default:
			return f, badFilter(s, "role assignments can be filtered by atScope(), principalId eq '{id}' and assignedTo('{id}')")
		}
	}
	return f, nil
}

// ParseRoleFilter parses the $filter of a role definition list:
// "roleName eq '…'" and "type eq 'CustomRole'|'AKVBuiltInRole'|'BuiltInRole'",
// joined by "and". An empty filter keeps everything.
func ParseRoleFilter(s string) (RoleFilter, error) {
	var f RoleFilter
	terms, err := parseFilter(s)
	if err != nil {
		return f, err
	}
	for _, t := range terms {
		switch {
		case !t.fn && strings.EqualFold(t.name, "roleName") && f.RoleName == "":
			f.RoleName = t.arg
		case !t.fn && strings.EqualFold(t.name, "type") && f.Type == "":
			switch {
			case strings.EqualFold(t.arg, TypeCustom):
				f.Type = TypeCustom
			case strings.EqualFold(t.arg, TypeBuiltIn), strings.EqualFold(t.arg, "BuiltInRole"):
				f.Type = TypeBuiltIn
			default:
				return f, badFilter(s, "type is CustomRole or AKVBuiltInRole")
			}
		default:
			return f, badFilter(s, "role definitions can be filtered by roleName eq '{name}' and type eq '{type}'")
		}
	}
	return f, nil
}

func badFilter(s, why string) error {
	return fault.New(fault.BadParameter, "BadParameter", "the $filter '%s' is not valid: %s", s, why)
}

// term is one condition of a filter: name eq 'arg', or name() / name('arg').
type term struct {
	name   string
	fn     bool
	hasArg bool
	arg    string
}

// parseFilter splits an OData filter of conditions joined by "and".
func parseFilter(s string) ([]term, error) {
	p := &filterParser{s: s}
	var out []term
	p.space()
	if p.eof() {
		return nil, nil
	}
	for {
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		p.space()
		if p.eof() {
			return out, nil
		}
		if w := p.word(); !strings.EqualFold(w, "and") {
			return nil, badFilter(s, "conditions are joined by 'and'")
		}
		p.space()
	}
}

type filterParser struct {
	s string
	i int
}

func (p *filterParser) eof() bool { return p.i >= len(p.s) }

func (p *filterParser) space() {
	for !p.eof() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *filterParser) word() string {
	start := p.i
	for !p.eof() {
		c := p.s[p.i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i]
}

// quoted reads a quoted string literal; a doubled quote inside stands
// for one quote.
func (p *filterParser) quoted() (string, error) {
	if p.eof() || p.s[p.i] != '\'' {
		return "", badFilter(p.s, "a value must be a quoted string")
	}
	p.i++
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		if c != '\'' {
			b.WriteByte(c)
			continue
		}
		if !p.eof() && p.s[p.i] == '\'' {
			b.WriteByte('\'')
			p.i++
			continue
		}
		return b.String(), nil
	}
	return "", badFilter(p.s, "a quoted string is not closed")
}

func (p *filterParser) term() (term, error) {
	t := term{name: p.word()}
	if t.name == "" {
		return t, badFilter(p.s, "a condition must start with a name")
	}
	if !p.eof() && p.s[p.i] == '(' {
		t.fn = true
		p.i++
		p.space()
		if !p.eof() && p.s[p.i] == '\'' {
			arg, err := p.quoted()
			if err != nil {
				return t, err
			}
			t.arg, t.hasArg = arg, true
			p.space()
		}
		if p.eof() || p.s[p.i] != ')' {
			return t, badFilter(p.s, "a function call is not closed")
		}
		p.i++
		return t, nil
	}
	p.space()
	if op := p.word(); !strings.EqualFold(op, "eq") {
		return t, badFilter(p.s, "the only comparison is 'eq'")
	}
	p.space()
	arg, err := p.quoted()
	if err != nil {
		return t, err
	}
	t.arg, t.hasArg = arg, true
	return t, nil
}
