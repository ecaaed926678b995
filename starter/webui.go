package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/spf13/cobra"

	"github.com/fleetflow/fleetflow/schemas"
)

// webUIColumns are the workflow list's columns fleetflow recommends: the
// Web UI's own Status, Workflow ID, Type, Start and End, and the search
// attributes a Mission sets — its robot, site and state — so the list
// reads like a fleet board.
var webUIColumns = []string{"Status", "Workflow ID", "Type", schemas.SearchAttrRobotID, schemas.SearchAttrSite, schemas.SearchAttrMissionState, "Start", "End"}

// webUIColumnsKey is where the Temporal Web UI (v2, as the pinned CLI
// serves it) keeps each namespace's workflow list columns: browser
// localStorage, JSON {namespace: [{label}]}; a search attribute's column
// is labelled with its name. Its "Configure Columns" drawer writes the same.
const webUIColumnsKey = "namespace-workflow-table-columns"

func webUICmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webui",
		Short: "The Temporal Web UI's workflow list as a fleet board: robot, site and mission state columns",
	}
	var out, uiURL, chromium string
	var timeout time.Duration
	shot := &cobra.Command{
		Use:   "screenshot",
		Short: "Show the workflow list with fleetflow's columns in headless Chromium, check them and save a PNG",
		Long: `screenshot opens the Web UI's workflow list of the namespace in headless
Chromium with fleetflow's columns (` + strings.Join(webUIColumns, ", ") + `),
the ones to pick in the UI's "Configure Columns" drawer, waits for the rows,
checks that the columns are shown and that some mission row names its robot,
site and state, and saves a screenshot. Run it while ` + "`make dev`" + ` is up and a
mission or two have run. Needs Chromium (Debian: apt-get install chromium).
Exit 1 when a column or the mission values are missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			if uiURL == "" {
				uiURL = cfg.Temporal.UIURL
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			board, err := webUIScreenshot(ctx, chromium, uiURL, cfg.Temporal.Namespace, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "columns: %s\n", strings.Join(board.Headers, " | "))
			fmt.Fprintf(cmd.OutOrStdout(), "first mission row: %s\nscreenshot: %s\n", strings.Join(board.MissionRow, " | "), out)
			return nil
		},
	}
	shot.Flags().StringVar(&out, "out", "webui-workflows.png", "where to write the PNG")
	shot.Flags().StringVar(&uiURL, "ui-url", "", "the Web UI (default temporal.uiURL)")
	shot.Flags().StringVar(&chromium, "chromium", "", "the Chromium binary (default: chromium or google-chrome from PATH)")
	shot.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up after")
	cmd.AddCommand(shot)
	return cmd
}

// webUIBoard is what the workflow list showed.
type webUIBoard struct {
	Headers    []string // column headers, in order
	MissionRow []string // the cells of the first Mission row
}

// findChromium is the Chromium binary: path if given, else the first of
// chromium, chromium-browser, google-chrome on PATH.
func findChromium(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium on PATH (Debian: apt-get install chromium; or --chromium PATH)")
}

// webUIScreenshot loads the workflow list of namespace with webUIColumns
// (set in the UI's localStorage first, as its column drawer would), waits
// until a Mission row shows values in the robot, site and state columns,
// saves a full-page PNG to out and returns what the list showed. Errors:
// no Chromium, the UI unreachable, a column missing, no Mission row with
// the three values within ctx.
func webUIScreenshot(ctx context.Context, chromium, uiURL, namespace, out string) (webUIBoard, error) {
	bin, err := findChromium(chromium)
	if err != nil {
		return webUIBoard{}, err
	}
	uiURL = strings.TrimRight(uiURL, "/")
	cols := make([]map[string]string, len(webUIColumns))
	for i, c := range webUIColumns {
		cols[i] = map[string]string{"label": c}
	}
	setting, _ := json.Marshal(map[string]any{namespace: cols})
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.WindowSize(1600, 900),
		chromedp.Flag("headless", true), chromedp.NoSandbox)
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	list := uiURL + "/namespaces/" + namespace + "/workflows?query=" + strings.ReplaceAll("WorkflowType='"+schemas.MissionWorkflowType+"'", "'", "%27")
	var board webUIBoard
	// The header cells and the first Mission row's cells, by the table's
	// own column order.
	const read = `(() => {
		const t = document.querySelector('table');
		if (!t) return {headers: [], missionRow: []};
		const heads = [...t.querySelectorAll('thead th')].map(th => th.innerText.trim());
		const row = [...t.querySelectorAll('tbody tr')].map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()))
			.find(cells => cells.some(c => c.startsWith('mission-')));
		return {headers: heads, missionRow: row || []};
	})()`
	type shown struct {
		Headers    []string `json:"headers"`
		MissionRow []string `json:"missionRow"`
	}
	fail := func(err error) (webUIBoard, error) { return board, fmt.Errorf("web UI %s: %w", uiURL, err) }
	if err := chromedp.Do(bctx, chromedp.Navigate(uiURL+"/")); err != nil {
		return fail(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](fmt.Sprintf("localStorage.setItem(%q, %q), true", webUIColumnsKey, string(setting)))); err != nil {
		return fail(err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(list)); err != nil {
		return fail(err)
	}
	for {
		if got, err := chromedp.Run(bctx, chromedp.Evaluate[shown](read)); err == nil {
			board = webUIBoard{Headers: got.Headers, MissionRow: got.MissionRow}
		}
		if board.complete() {
			break
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("the workflow list at %s never showed a Mission with its robot, site and state (columns %q, first mission row %q): %w",
				list, board.Headers, board.MissionRow, ctx.Err()))
		case <-time.After(500 * time.Millisecond):
		}
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: PNG (lower is JPEG)
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		return board, err
	}
	return board, nil
}

// complete: every fleetflow column is shown, and the mission row has a
// value in the robot, site and state columns.
func (b webUIBoard) complete() bool {
	idx := map[string]int{}
	for i, h := range b.Headers {
		idx[h] = i
	}
	for _, c := range webUIColumns {
		if _, ok := idx[c]; !ok {
			return false
		}
	}
	for _, c := range []string{schemas.SearchAttrRobotID, schemas.SearchAttrSite, schemas.SearchAttrMissionState} {
		i := idx[c]
		if i >= len(b.MissionRow) || b.MissionRow[i] == "" {
			return false
		}
	}
	return true
}
