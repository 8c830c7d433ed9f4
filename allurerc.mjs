// Allure 3 configuration for the ddoauth conformance report (used by harness/results/report.py).
//
//   node_modules/.bin/allure generate reports/allure-results --config allurerc.mjs --output reports/allure-report
//
// - awesome plugin, one self-contained index.html (opens from file://, no server)
// - history kept in reports/history.jsonl (the previous run by default: DDOAUTH_ALLURE_HISTORY_LIMIT)
// - categories come from categories.json in the results directory, which the pytest plugin
//   fixtures/reporting.py writes from harness/results/outcome.py:CATEGORIES (the outcome
//   classifier's own categories: one source of truth).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const reportName = "Datadog OAuth conformance";
const resultsDir = resolve(process.env.DDOAUTH_ALLURE_RESULTS ?? join(root, "reports", "allure-results"));
const historyPath = resolve(process.env.DDOAUTH_ALLURE_HISTORY ?? join(root, "reports", "history.jsonl"));
// Runs of history kept (and embedded in the single-file report: about 1.4 MB per run of the default
// 600 tests): the previous run by default, so the report says what changed since then and does not grow
// night after night. DDOAUTH_ALLURE_HISTORY_LIMIT=N keeps more.
const historyLimit = Number.parseInt(process.env.DDOAUTH_ALLURE_HISTORY_LIMIT ?? "1", 10);

function loadCategories() {
  const file = join(resultsDir, "categories.json");
  if (!existsSync(file)) return undefined;
  try {
    const rules = JSON.parse(readFileSync(file, "utf8"));
    if (!Array.isArray(rules)) return undefined;
    // Allure 3 accepts the Allure 2 keys (matchedStatuses / messageRegex / traceRegex).
    return rules
      .filter((r) => r && typeof r.name === "string" && r.name.trim())
      .map(({ name, matchedStatuses, messageRegex, traceRegex, flaky }) =>
        Object.fromEntries(
          Object.entries({ name, matchedStatuses, messageRegex, traceRegex, flaky }).filter(
            ([, v]) => v !== undefined,
          ),
        ),
      );
  } catch (err) {
    console.error(`ignoring unreadable ${file}: ${err}`);
    return undefined;
  }
}

const categories = loadCategories();

export default {
  name: reportName,
  output: join(root, "reports", "allure-report"),
  historyPath,
  historyLimit: Number.isInteger(historyLimit) && historyLimit >= 0 ? historyLimit : 1,
  appendHistory: true,
  ...(categories ? { categories } : {}),
  plugins: {
    awesome: {
      options: {
        reportName,
        singleFile: true,
        reportLanguage: "en",
        groupBy: ["epic", "feature", "story"],  // site -> area -> concern: what a reviewer scans
      },
    },
  },
};
