// The report's behaviour: tabs, per-experiment tables (sort, filter, tick, open), the overlay of the
// ticked runs' curves, the metric-vs-parameter scatter, the parameter diff, and the study plots.
// Text from runs reaches the page only as textContent, or escaped for Plotly (plotText).
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const CONFIG = {displaylogo: false, responsive: true};
  const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
                  '#bcbd22', '#17becf'];

  // Plotly reads a few HTML tags in names and hover text; run texts must show as typed.
  function plotText(value) {
    return String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }
  function layout(extra) {
    return Object.assign({template: data.template, margin: {l: 60, r: 16, t: 16, b: 48}, hovermode: 'closest'}, extra);
  }
  function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

  // plotly.js takes from a few hundred ms (basic bundle) to seconds (full) to run, and the first
  // screen needs no chart: it waits in a text/plain script until a chart is drawn, or the page
  // is idle after opening.
  // The Content-Security-Policy lists its hash, so it runs when inserted as a script.
  function plotly() {
    if (!window.Plotly) {
      performance.mark('plotly-start');
      const script = document.createElement('script');
      script.textContent = document.getElementById('plotly-js').textContent;
      document.head.appendChild(script);
      performance.mark('plotly-ready');
    }
    return window.Plotly;
  }

  // numbers as the tables show them: 4 significant digits (0.007412), integers whole
  function shortNumber(value) {
    return Number.isInteger(value) || !isFinite(value) ? String(value) : String(Number(value.toPrecision(4)));
  }
  function shortValue(value) {
    if (typeof value === 'number') { return shortNumber(value); }
    return JSON.stringify(value, (key, item) => typeof item === 'number' && isFinite(item) && !Number.isInteger(item)
      ? Number(item.toPrecision(4)) : item);
  }

  // -- one experiment ------------------------------------------------------------------------
  // Every run has its row in the page (the HTML lists them all); a view shows one page of them at a time
  // (100 rows by default), so a table of thousands of runs lays out and scrolls like one of a hundred.
  // Sorting and filtering work on all rows; paging picks among the rows the filter keeps.
  function ExperimentView(section, info) {
    const table = section.querySelector('table.runs');
    const body = table.tBodies[0];
    const headers = Array.from(table.tHead.rows[0].cells);
    let order = Array.from(body.rows);  // every run's row, in the order sorted
    const byKey = new Map(order.map(row => [row.dataset.key, row]));
    const kept = new Set(order);        // the rows the filter keeps
    let text = null;                    // each row's text, for the filter: read when first needed
    const ticked = [];  // keys, in the order they were ticked (their colour)
    const curvesDiv = section.querySelector('.chart.curves');
    const scatterDiv = section.querySelector('.chart.scatter');
    const control = name => section.querySelector(name);
    const pager = control('.pager'), pageInfo = control('.page-info'), pageSize = control('.page-size');
    let drawn = false, page = 0;

    // paging: only the current page's rows (and their opened details) are laid out
    function showPage() {
      const size = Number(pageSize.value);
      const shownRows = order.filter(row => kept.has(row));
      const pages = Math.max(1, Math.ceil(shownRows.length / size));
      page = Math.min(Math.max(page, 0), pages - 1);
      const onPage = new Set(shownRows.slice(page * size, (page + 1) * size));
      order.forEach(row => {
        row.hidden = !onPage.has(row);
        if (row.detail) { row.detail.hidden = row.hidden || row.querySelector('button.open').getAttribute('aria-expanded') !== 'true'; }
      });
      pager.hidden = shownRows.length <= size;
      pageInfo.textContent = 'rows ' + (shownRows.length ? page * size + 1 : 0) + '–' +
        Math.min((page + 1) * size, shownRows.length) + ' of ' + shownRows.length;
      control('.prev').disabled = page === 0;
      control('.next').disabled = page >= pages - 1;
    }
    function pageOf(row) {
      return Math.floor(order.filter(r => kept.has(r)).indexOf(row) / Number(pageSize.value));
    }
    control('.prev').addEventListener('click', () => { page -= 1; showPage(); });
    control('.next').addEventListener('click', () => { page += 1; showPage(); });
    pageSize.addEventListener('change', () => { page = 0; showPage(); });

    // sorting: numbers by value, text in natural order; blanks last either way
    function sortKey(cell) {
      if (cell.dataset.v !== undefined) { return Number(cell.dataset.v); }
      const value = cell.textContent.trim();
      return value === '' ? null : value;
    }
    function compare(a, b) {
      if (typeof a === 'number' && typeof b === 'number') { return a - b; }
      return String(a).localeCompare(String(b), undefined, {numeric: true});
    }
    headers.forEach((th, index) => {
      if (index === 0) { return; }
      th.addEventListener('click', () => {
        const ascending = th.getAttribute('aria-sort') !== 'ascending';
        headers.forEach(h => h.removeAttribute('aria-sort'));
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        const keyed = order.map(row => [sortKey(row.cells[index]), row]);
        keyed.sort((r, s) => {
          if (r[0] === null || s[0] === null) { return (r[0] === null) - (s[0] === null); }
          return ascending ? compare(r[0], s[0]) : compare(s[0], r[0]);
        });
        order = keyed.map(([, row]) => row);
        const fragment = document.createDocumentFragment();
        order.forEach(row => { fragment.appendChild(row); if (row.detail) { fragment.appendChild(row.detail); } });
        body.appendChild(fragment);
        page = 0;
        showPage();
      });
    });

    // filtering by text and status
    const filter = control('.filter'), status = control('.status-filter'), shown = control('.shown');
    function applyFilter() {
      const query = filter.value.trim().toLowerCase(), wanted = status.value;
      if (query !== '' && text === null) { text = new Map(order.map(row => [row, row.textContent.toLowerCase()])); }
      kept.clear();
      order.forEach(row => {
        const hide = (wanted !== '' && row.dataset.status !== wanted) || (query !== '' && !text.get(row).includes(query));
        if (!hide) { kept.add(row); }
      });
      shown.textContent = kept.size + ' of ' + order.length + ' runs shown';
      page = 0;
      showPage();
      scheduleScatter();
    }
    filter.addEventListener('input', applyFilter);
    status.addEventListener('change', applyFilter);

    // a run's details and figures: cloned from its <template> when first opened
    function toggleDetail(row, open) {
      const button = row.querySelector('button.open');
      open = open === undefined ? button.getAttribute('aria-expanded') !== 'true' : open;
      if (open && !row.detail) {
        const detail = document.createElement('tr');
        const cell = detail.insertCell();
        detail.className = 'detail';
        cell.colSpan = row.cells.length;
        cell.appendChild(document.getElementById('detail-' + row.dataset.key).content.cloneNode(true));
        row.after(detail);
        row.detail = detail;
      }
      if (row.detail) { row.detail.hidden = !open || row.hidden; }
      button.setAttribute('aria-expanded', String(open));
    }
    // one listener for the whole table, not two per row: thousands of rows open at once
    body.addEventListener('click', event => {
      const button = event.target.closest('button.open');
      if (button) { toggleDetail(button.closest('tr.run-row')); }
    });
    body.addEventListener('change', event => {
      if (event.target.matches('.pick input')) {
        tick(event.target.closest('tr.run-row').dataset.key, event.target.checked);
      }
    });
    showPage();

    function tick(key, on) {
      const at = ticked.indexOf(key);
      if (on && at < 0) { ticked.push(key); }
      if (!on && at >= 0) { ticked.splice(at, 1); }
      const row = byKey.get(key);
      row.querySelector('.pick input').checked = on;
      row.classList.toggle('ticked', on);
      drawCurves();
      drawDiff();
      scheduleScatter();
    }
    control('.clear').addEventListener('click', () => ticked.slice().forEach(key => tick(key, false)));

    // the overlay: every chosen metric of every ticked run, train dotted, held-out solid
    // each model of a run (its tag: a run of the optimizers lesson trains one per optimizer) has its own colour
    function drawCurves() {
      const chosen = Array.from(section.querySelectorAll('.curve-metric:checked')).map(box => box.value);
      const traces = [], colour = new Map();
      ticked.forEach(key => {
        const run = info.runs[key];
        run.curves.filter(line => chosen.includes(line.metric)).forEach(line => {
          const series = key + '\u0000' + line.tag;
          if (!colour.has(series)) { colour.set(series, COLORS[colour.size % COLORS.length]); }
          const name = plotText(run.label + (line.tag ? ' ' + line.tag : '') + ' · ' + line.metric);
          traces.push({
            x: line.x, y: line.y, type: 'scatter', mode: line.x.length > 40 ? 'lines' : 'lines+markers', name: name,
            line: {color: colour.get(series), dash: info.held_out.includes(line.metric) ? 'solid' : 'dot'},
            marker: {size: 5}, meta: key, hovertemplate: name + '<br>epoch %{x}: %{y:.4g}<extra></extra>',
          });
        });
      });
      curvesDiv.hidden = ticked.length === 0;
      control('.curves-hint').hidden = ticked.length > 0;
      if (ticked.length === 0) { return; }
      plotly().react(curvesDiv, traces, layout({
        xaxis: {title: {text: 'epoch'}},
        yaxis: {type: control('.log-y').checked ? 'log' : 'linear', title: {text: plotText(chosen.join(', '))}},
        legend: {orientation: 'h', y: -0.18, yanchor: 'top'},
      }), CONFIG);
    }
    section.querySelectorAll('.curve-metric').forEach(box => box.addEventListener('change', drawCurves));
    control('.log-y').addEventListener('change', drawCurves);

    // the parameters that differ among the ticked runs
    function drawDiff() {
      const target = control('.diff');
      target.textContent = '';
      if (ticked.length < 2) { return; }
      const runs = ticked.map(key => info.runs[key]);
      const keys = Array.from(new Set(runs.flatMap(run => Object.keys(run.params))));
      const differing = keys.filter(k => runs.some(run => !same(run.params[k], runs[0].params[k])));
      if (differing.length === 0) {
        const note = target.appendChild(document.createElement('p'));
        note.className = 'hint';
        note.textContent = 'The ticked runs have the same parameters.';
        return;
      }
      const diff = target.appendChild(document.createElement('table'));
      diff.className = 'param-diff';
      const head = diff.createTHead().insertRow();
      head.appendChild(document.createElement('th')).textContent = 'parameter';
      runs.forEach(run => { head.appendChild(document.createElement('th')).textContent = run.label; });
      const rowsOut = diff.createTBody();
      differing.forEach(k => {
        const row = rowsOut.insertRow();
        row.insertCell().textContent = k;
        runs.forEach(run => { row.insertCell().textContent = k in run.params ? shortValue(run.params[k]) : ''; });
      });
    }

    // metric vs parameter, over the runs the filter shows; ticked runs ringed
    let pending = false;
    function scheduleScatter() {
      if (!drawn || !scatterDiv || pending) { return; }
      pending = true;
      requestAnimationFrame(() => { pending = false; drawScatter(); });
    }
    function drawScatter() {
      const x = control('.scatter-x').value, y = control('.scatter-y').value;
      const points = order.filter(row => kept.has(row)).map(row => [row.dataset.key, info.runs[row.dataset.key]])
        .filter(([, run]) => run.values[x] !== null && run.values[x] !== undefined && typeof run.values[y] === 'number');
      const trace = (subset, name, marker) => ({
        x: subset.map(([, run]) => typeof run.values[x] === 'object' ? JSON.stringify(run.values[x]) : run.values[x]),
        y: subset.map(([, run]) => run.values[y]), customdata: subset.map(([key]) => key),
        text: subset.map(([, run]) => plotText(run.label)), type: 'scatter', mode: 'markers', name: name, marker: marker,
        hovertemplate: '%{text}<br>' + plotText(x) + ' %{x}<br>' + plotText(y) + ' %{y:.4g}<extra></extra>',
      });
      plotly().react(scatterDiv, [
        trace(points, 'runs', {size: 8, color: '#1f77b4', opacity: 0.75}),
        trace(points.filter(([key]) => ticked.includes(key)), 'ticked', {size: 14, color: 'rgba(0,0,0,0)',
          line: {color: '#d62728', width: 2}}),
      ], layout({
        xaxis: {title: {text: plotText(x)}, type: control('.log-x').checked ? 'log' : '-'},
        yaxis: {title: {text: plotText(y)}}, showlegend: false,
      }), CONFIG);
    }
    ['.scatter-x', '.scatter-y', '.log-x'].forEach(name => control(name).addEventListener('change', scheduleScatter));
    const xSelect = control('.scatter-x');
    function defaultLogX() {  // learning rates and other ranges over two decades read better on a log axis
      const values = Object.values(info.runs).map(run => run.values[xSelect.value]);
      const numbers = values.filter(v => typeof v === 'number');
      control('.log-x').checked = numbers.length > 1 && numbers.length === values.length &&
        Math.min(...numbers) > 0 && Math.max(...numbers) / Math.min(...numbers) > 100;
    }
    xSelect.addEventListener('change', defaultLogX);

    this.show = function () {  // charts are drawn when their view is first shown (Plotly needs a size)
      if (drawn) { return; }
      drawn = true;
      if (scatterDiv) {
        defaultLogX();
        drawScatter();  // Plotly gives the div its .on() here
        scatterDiv.on('plotly_click', event => {
          const key = event.points[0].customdata;
          tick(key, !ticked.includes(key));
        });
      }
    };
    this.reveal = function (key) {  // a link to a run: show its row (its page), open it, scroll to it
      const row = byKey.get(key);
      if (!kept.has(row)) { filter.value = ''; status.value = ''; applyFilter(); }
      page = pageOf(row);
      showPage();
      toggleDetail(row, true);
      row.scrollIntoView({block: 'center'});
    };
  }

  // -- views and links -----------------------------------------------------------------------
  const views = new Map();
  data.experiments.forEach(info => {
    views.set(info.view, new ExperimentView(document.getElementById(info.view), info));
  });
  data.studies.forEach(study => {
    let drawn = false;
    views.set(study.view, {show: function () {
      if (drawn) { return; }
      drawn = true;
      study.plots.forEach(plot => {
        const figure = plot.figure;
        plotly().newPlot(document.getElementById(plot.id), figure.data,
                       Object.assign({}, figure.layout, {template: data.template}), CONFIG);
      });
    }});
  });

  function show(viewId) {
    document.querySelectorAll('section.view').forEach(view => { view.hidden = view.id !== viewId; });
    document.querySelectorAll('nav.tabs a').forEach(tab => {
      tab.setAttribute('aria-selected', String(tab.dataset.view === viewId));
    });
    if (views.has(viewId)) { views.get(viewId).show(); }
  }
  function route() {
    const target = decodeURIComponent(location.hash.slice(1)) || 'overview';
    const element = document.getElementById(target);
    if (element && element.matches('section.view')) {
      show(target);
      window.scrollTo(0, 0);
    } else if (target.startsWith('run-') && data.run_views[target.slice(4)]) {
      const view = data.run_views[target.slice(4)];
      show(view);
      views.get(view).reveal(target.slice(4));
    } else {
      show('overview');
    }
  }
  window.addEventListener('hashchange', route);
  route();
  performance.mark('report-ready');  // for tests and the benchmark: everything is wired
  // after the first screen is painted; a chart drawn earlier loads it itself
  window.addEventListener('load', () => setTimeout(plotly, 50));
})();
