package issuer

import (
	"fmt"
	"testing"
	"time"
)

// TestPruneBoundsTheStore: expired families go; past maxFamilies the revoked go first, then
// those that expire soonest; the family being written always stays.
func TestPruneBoundsTheStore(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		live      int // live families, expiring 1..live seconds from now, key "live<i>"
		revoked   int // revoked families expiring late, key "revoked<i>"
		expired   int
		keepSoon  bool // the kept family expires sooner than any other
		wantLen   int
		wantGone  []string
		wantStays []string
	}{
		{name: "under the bound, expired dropped", live: 10, expired: 5, wantLen: 10, wantGone: []string{"expired0"}, wantStays: []string{"live0", "live9"}},
		{name: "over the bound, soonest expiry goes", live: maxFamilies + 5, wantLen: maxFamilies, wantGone: []string{"live0", "live4"}, wantStays: []string{"live5", fmt.Sprintf("live%d", maxFamilies+4)}},
		{name: "revoked go before live ones", live: maxFamilies, revoked: 3, wantLen: maxFamilies, wantGone: []string{"revoked0", "revoked2"}, wantStays: []string{"live0"}},
		{name: "the family being written stays", live: maxFamilies, keepSoon: true, wantLen: maxFamilies, wantGone: []string{"live0"}, wantStays: []string{"keep", "live1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			all := map[string]session{}
			for i := range tc.live {
				all[fmt.Sprintf("live%d", i)] = session{Expires: now.Unix() + 10 + int64(i)}
			}
			for i := range tc.revoked {
				all[fmt.Sprintf("revoked%d", i)] = session{Expires: now.Unix() + 1e6, Revoked: true}
			}
			for i := range tc.expired {
				all[fmt.Sprintf("expired%d", i)] = session{Expires: now.Unix() - 1 - int64(i)}
			}
			keep := "none"
			if tc.keepSoon {
				keep = "keep"
				all[keep] = session{Expires: now.Unix() + 1}
			}
			prune(all, keep, now)
			if len(all) != tc.wantLen {
				t.Errorf("%d families left, want %d", len(all), tc.wantLen)
			}
			for _, k := range tc.wantGone {
				if _, ok := all[k]; ok {
					t.Errorf("%s stayed", k)
				}
			}
			for _, k := range tc.wantStays {
				if _, ok := all[k]; !ok {
					t.Errorf("%s was pushed out", k)
				}
			}
		})
	}
}
