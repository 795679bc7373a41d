package credentials

import (
	"os"
	"testing"

	"github.com/lintel/lintel/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
