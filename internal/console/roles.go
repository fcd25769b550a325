package console

import (
	"net/http"
	"sort"
	"strings"

	"tresor/internal/uuid"
	"tresor/internal/wire"
)

// rolesData is the role assignments page's.
type rolesData struct {
	Name        string
	Assignments []assignmentRow
	Definitions []wire.RoleDefinition
	Error       *flash
	DefsError   *flash
	Principals  []wire.Principal // empty unless the viewer may list them
}

// assignmentRow is a role assignment with its role's name.
type assignmentRow struct {
	wire.RoleAssignment
	RoleName      string
	PrincipalName string // the local principal's display name, if the viewer may list them
}

func (c *Console) rolesPage(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("hsm")
	d := rolesData{Name: name}
	status := http.StatusOK
	cx, cl, hsmURL, err := c.api(r, s, name)
	if err == nil {
		if d.Definitions, err = cl.ListRoleDefinitions(cx, hsmURL, "/", ""); err != nil {
			f := errorFlash(err)
			d.DefsError = &f
		}
		if ps, perr := cl.ListPrincipals(cx); perr == nil {
			d.Principals = ps
		}
		var as []wire.RoleAssignment
		if as, err = cl.ListRoleAssignments(cx, hsmURL, "/", ""); err == nil {
			names := map[string]string{}
			for _, def := range d.Definitions {
				names[strings.ToLower(def.ID)] = def.Properties.RoleName
				names[strings.ToLower(def.Name)] = def.Properties.RoleName
			}
			for _, a := range as {
				rn := names[strings.ToLower(a.Properties.RoleDefinitionID)]
				if rn == "" {
					rn = a.Properties.RoleDefinitionID
				}
				row := assignmentRow{RoleAssignment: a, RoleName: rn}
				for _, p := range d.Principals {
					if strings.EqualFold(p.ObjectID, a.Properties.PrincipalID) {
						row.PrincipalName = p.DisplayName
					}
				}
				d.Assignments = append(d.Assignments, row)
			}
			sort.Slice(d.Assignments, func(i, j int) bool {
				a, b := d.Assignments[i], d.Assignments[j]
				if a.Properties.Scope != b.Properties.Scope {
					return a.Properties.Scope < b.Properties.Scope
				}
				return a.RoleName < b.RoleName
			})
		}
	}
	if err != nil {
		f := errorFlash(err)
		d.Error = &f
		status = statusOf(err)
	}
	sort.Slice(d.Definitions, func(i, j int) bool {
		return d.Definitions[i].Properties.RoleName < d.Definitions[j].Properties.RoleName
	})
	c.render(w, r, s, status, "roles", view{Title: "Role assignments of " + name, Nav: "roles", HSM: name, Data: d})
}

// assignRole assigns a role, named by its name or id, to a principal at a
// scope ("/", "/keys" or "/keys/{name}").
func (c *Console) assignRole(r *http.Request, s *session) string {
	name := r.PathValue("hsm")
	back := hsmPath(name, "roles")
	f := r.PostForm
	role, principal := strings.TrimSpace(f.Get("role")), strings.TrimSpace(f.Get("principal"))
	scope := strings.TrimSpace(f.Get("scope"))
	if scope == "" {
		scope = "/"
	}
	cx, cl, hsmURL, err := c.api(r, s, name)
	if err != nil {
		s.addFlash(errorFlash(err))
		return back
	}
	roleID := role
	if defs, err := cl.ListRoleDefinitions(cx, hsmURL, "/", ""); err == nil {
		for _, d := range defs {
			if strings.EqualFold(d.Properties.RoleName, role) || strings.EqualFold(d.Name, role) {
				roleID = d.ID
			}
		}
	}
	a, err := cl.CreateRoleAssignment(cx, hsmURL, scope, uuid.New(), roleID, principal)
	if err != nil {
		s.addFlash(errorFlash(err))
		return back
	}
	s.addFlash(flash{Message: "Assigned " + role + " to " + principal + " at " + a.Properties.Scope + "."})
	return back
}

func (c *Console) removeRole(r *http.Request, s *session) string {
	name := r.PathValue("hsm")
	cx, cl, hsmURL, err := c.api(r, s, name)
	if err == nil {
		_, err = cl.DeleteRoleAssignment(cx, hsmURL, "/", r.PathValue("assignment"))
	}
	if err != nil {
		s.addFlash(errorFlash(err))
	} else {
		s.addFlash(flash{Message: "Removed the role assignment " + r.PathValue("assignment") + "."})
	}
	return hsmPath(name, "roles")
}
