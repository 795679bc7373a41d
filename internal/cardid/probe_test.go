package cardid

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProbe(t *testing.T) { require.True(t, true) }
