// Typeset the math of every page (pymdownx.arithmatex, generic mode) with the vendored KaTeX.
// document$ is mkdocs-material's page observable: it fires on the first load and after
// every instant navigation.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    throwOnError: false,
  });
});
