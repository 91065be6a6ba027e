// @ts-check
// What every step of the page tests leaves and checks: a screenshot in artifacts/, and no
// accessibility violation (axe, WCAG 2.1 AA).
const { expect } = require("@playwright/test");
const { default: AxeBuilder } = require("@axe-core/playwright");
const fs = require("fs");
const path = require("path");

const shots = path.join(__dirname, "artifacts", "screenshots");
fs.mkdirSync(shots, { recursive: true });

async function step(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const results = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
    .analyze();
  const found = results.violations.map((violation) =>
    `${violation.id}: ${violation.help} (${violation.nodes.map((node) => node.target.join(" ")).join(", ")})`);
  expect(found, `accessibility violations on ${name}`).toEqual([]);
}

module.exports = { step };
