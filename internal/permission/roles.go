package permission

import (
	"errors"
	"fmt"
	"sort"
)

// Roles maps role names to their compiled permissions, as a TokenPolicy
// declares them. It is immutable once built.
type Roles struct {
	roles map[string]Set
}

// CompileRoles parses every role's permissions once. A role with a permission
// that does not parse is an error naming the role.
func CompileRoles(roles map[string][]string) (*Roles, error) {
	r := &Roles{roles: make(map[string]Set, len(roles))}
	names := make([]string, 0, len(roles))
	for name := range roles {
		names = append(names, name)
	}
	sort.Strings(names) // stable error order
	var errs []error
	for _, name := range names {
		if name == "" {
			errs = append(errs, errors.New("role with an empty name"))
			continue
		}
		set, err := Compile(roles[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("role %q: %w", name, err))
			continue
		}
		r.roles[name] = set
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// Permissions returns the union of the named roles' permissions as strings,
// without duplicates, in role order then declaration order: this is what goes
// into a token's "perms" claim. An unknown role is an error, so that a typo in
// a user's roles is caught instead of silently granting less.
func (r *Roles) Permissions(names ...string) ([]string, error) {
	var out []string
	seen := make(map[string]struct{})
	for _, name := range names {
		set, ok := r.roles[name]
		if !ok {
			return nil, fmt.Errorf("unknown role %q", name)
		}
		for _, p := range set.perms {
			if _, dup := seen[p.text]; dup {
				continue
			}
			seen[p.text] = struct{}{}
			out = append(out, p.text)
		}
	}
	return out, nil
}

// Grants returns the compiled union of the named roles' permissions.
func (r *Roles) Grants(names ...string) (Set, error) {
	var s Set
	seen := make(map[string]struct{})
	for _, name := range names {
		set, ok := r.roles[name]
		if !ok {
			return Set{}, fmt.Errorf("unknown role %q", name)
		}
		for _, p := range set.perms {
			if _, dup := seen[p.text]; dup {
				continue
			}
			seen[p.text] = struct{}{}
			s.perms = append(s.perms, p)
		}
	}
	return s, nil
}
