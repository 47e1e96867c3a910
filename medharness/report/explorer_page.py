"""The explorer page's own style and script (static text; the data travels separately as JSON).

The script builds every element with createElement and fills it with textContent only, so no
text from a run is ever parsed as HTML. State (filters, search, sort, page) lives in the URL
fragment, which is how leaderboard and modality links open the page pre-filtered.
"""

from __future__ import annotations

import base64
import hashlib

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1em auto;max-width:1500px;padding:0 1em;color:#1b1b1b}
h1{font-size:1.5em;margin:.2em 0}p.note{background:#f5f7fa;border-left:4px solid #8aa4c8;padding:.4em .7em}
#controls{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:flex-end;background:#f6f7f9;padding:.6em;border:1px solid #ddd;position:sticky;top:0;z-index:2}
#controls label{display:flex;flex-direction:column;font-size:.82em;color:#444}
#controls select,#controls input{font-size:1em;max-width:16em}
#summary{margin:.6em 0}#summary table{border-collapse:collapse}#summary td,#summary th{border:1px solid #ddd;padding:.2em .5em;text-align:left}
#pager{margin:.5em 0}#pager button{margin:0 .3em}
table.samples{border-collapse:collapse;width:100%}table.samples>tbody>tr>td,table.samples>thead>tr>th{border:1px solid #d6d6d6;padding:.35em .5em;vertical-align:top;text-align:left}
table.samples th{background:#f3f4f6}
.q{white-space:pre-wrap;max-width:28em;min-width:14em}.ans{white-space:pre-wrap;max-width:22em}.id{color:#666;font-size:.85em}
.meta{font-size:.85em;color:#444}.meta span{display:block}.sc{font-size:.82em;color:#555;display:block}
.correct{background:#eaf7ea}.wrong{background:#fdecea}.partly{background:#fff8e0}.model_error{background:#f3e5f5}.data_error{background:#eeeeee;color:#555}
.tag{display:inline-block;font-size:.75em;border-radius:3px;padding:0 .35em;background:#555;color:#fff;margin-right:.3em}
img.thumb{max-width:160px;max-height:160px;cursor:zoom-in;border:1px solid #ccc;display:block;margin-bottom:.2em}
.noimg{font-size:.8em;color:#777;max-width:12em}
#viewer{position:fixed;inset:0;background:rgba(0,0,0,.8);display:none;align-items:center;justify-content:center;z-index:5;cursor:zoom-out}
#viewer img{max-width:95vw;max-height:95vh;background:#fff}
"""

# The DOM attributes set on <html> (data-script-errors, data-report-ready, data-ready-ms: milliseconds
# from navigation to the first rendered page, data-shown) are read
# back by the browser test and the load-time benchmark.
SCRIPT = r"""
(function(){
var root=document.documentElement,errors=0;
window.addEventListener('error',function(){errors+=1;root.setAttribute('data-script-errors',String(errors));});
var PAGE=50,D,state,scored,els={};
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined&&text!==null)e.textContent=String(text);return e;}
function fmt(v){return v===null||v===undefined?'n/a':(v*100).toFixed(1);}
function verdict(a){if(!a)return 'absent';if(a.o==='data_error')return 'data_error';if(a.o==='model_error')return 'model_error';
var v=a.v;if(v===null||v===undefined)return 'unscored';return v>=1?'correct':v<=0?'wrong':'partly';}
function readHash(){var s={g:{},v:{},q:'',sort:'',page:1,disagree:false,outcome:'',run:[]};
var p=new URLSearchParams(location.hash.replace(/^#/,''));
p.forEach(function(val,key){if(key.indexOf('g.')===0)s.g[key.slice(2)]=val;else if(key.indexOf('v.')===0)s.v[key.slice(2)]=val;
else if(key==='q')s.q=val;else if(key==='sort')s.sort=val;else if(key==='page')s.page=Math.max(1,parseInt(val,10)||1);
else if(key==='disagree')s.disagree=val==='1';else if(key==='outcome')s.outcome=val;else if(key==='run')s.run.push(val);});
return s;}
function writeHash(){var p=new URLSearchParams();Object.keys(state.g).forEach(function(k){if(state.g[k])p.append('g.'+k,state.g[k]);});
Object.keys(state.v).forEach(function(k){if(state.v[k])p.append('v.'+k,state.v[k]);});
if(state.q)p.append('q',state.q);if(state.sort)p.append('sort',state.sort);if(state.disagree)p.append('disagree','1');
if(state.outcome)p.append('outcome',state.outcome);state.run.forEach(function(r){p.append('run',r);});if(state.page>1)p.append('page',String(state.page));
history.replaceState(null,'','#'+p.toString());}
function shownSystems(){var ids=state.run;var out=[];D.systems.forEach(function(s,i){if(!ids.length||ids.indexOf(s.run_id)>=0)out.push(i);});return out.length?out:D.systems.map(function(s,i){return i;});}
function matches(s,sys){
for(var k in state.g){var want=state.g[k];if(want&&(s.groups[k]||[]).indexOf(want)<0)return false;}
for(var i=0;i<sys.length;i++){var want2=state.v[String(sys[i])];if(!want2)continue;var got=verdict(s.ans[sys[i]]);
if(want2==='not-correct'){if(got==='correct'||got==='data_error'||got==='absent')return false;}else if(got!==want2)return false;}
if(state.disagree){var seen={};sys.forEach(function(i){var a=s.ans[i];if(a&&a.o!=='data_error')seen[a.v===null||a.v===undefined?'-':String(a.v)]=1;});if(Object.keys(seen).length<2)return false;}
if(state.outcome){var any=sys.some(function(i){var a=s.ans[i];return a&&a.o===state.outcome;});
if(state.outcome==='ok'){any=sys.every(function(i){var a=s.ans[i];return a&&a.o==='scored';});}if(!any)return false;}
if(state.q){var needle=state.q.toLowerCase();var hay=[s.q].concat(s.gold);sys.forEach(function(i){if(s.ans[i])hay.push(s.ans[i].t);});
if(hay.join('\n').toLowerCase().indexOf(needle)<0)return false;}
return true;}
function sorted(rows){if(!state.sort)return rows;var parts=state.sort.split(':');var i=parseInt(parts[0],10),m=parts[1],dir=parts[2]==='asc'?1:-1;
return rows.slice().sort(function(a,b){var x=a.ans[i]&&a.ans[i].s[m],y=b.ans[i]&&b.ans[i].s[m];
var nx=x===null||x===undefined,ny=y===null||y===undefined;if(nx||ny)return nx===ny?a.pos-b.pos:nx?1:-1;
return x===y?a.pos-b.pos:(x<y?-dir:dir);});}
function summary(rows,sys){var box=els.summary;box.textContent='';
var t=el('table'),head=el('tr');['system','n ('+D.headline+')','mean '+D.headline+' x100','correct','wrong','model errors','skipped'].forEach(function(h){head.appendChild(el('th',null,h));});t.appendChild(head);
sys.forEach(function(i){var n=0,sum=0,c=0,w=0,me=0,sk=0;rows.forEach(function(s){var a=s.ans[i];if(!a)return;
if(a.o==='data_error'){sk+=1;return;}if(a.o==='model_error')me+=1;var h=a.s[D.headline];
if(D.per_sample_headline){if(h!==null&&h!==undefined){n+=1;sum+=h;}}else if(s.gold.some(function(g){return g.trim();})){n+=1;}
var v=verdict(a);if(v==='correct')c+=1;else if(v==='wrong')w+=1;});
var tr=el('tr');tr.setAttribute('data-system',String(i));
[D.systems[i].label,n,D.per_sample_headline&&n?fmt(sum/n):'n/a',c,w,me,sk].forEach(function(v,j){var td=el('td',j===1?'n':null,v);tr.appendChild(td);});t.appendChild(tr);});
box.appendChild(t);}
function imageCell(s){var td=el('td');if(!s.img.length){td.appendChild(el('div','noimg',s.img_note||'no image'));return td;}
s.img.forEach(function(k){if(typeof k==='string'){td.appendChild(el('div','noimg',k));return;}var im=D.images[k];var img=el('img','thumb');img.src=im.t;img.alt='image of sample '+s.id;
img.addEventListener('click',function(){els.big.src=im.l;els.viewer.style.display='flex';});td.appendChild(img);});return td;}
function render(){writeHash();var sys=shownSystems();var rows=D.samples.filter(function(s){return matches(s,sys);});
rows=sorted(rows);var pages=Math.max(1,Math.ceil(rows.length/PAGE));if(state.page>pages)state.page=pages;
els.count.textContent=String(rows.length);root.setAttribute('data-shown',String(rows.length));summary(rows,sys);
els.pageinfo.textContent='page '+state.page+' of '+pages;els.prev.disabled=state.page<=1;els.next.disabled=state.page>=pages;
var head=el('tr');['image','question and gold','metadata'].forEach(function(h){head.appendChild(el('th',null,h));});
sys.forEach(function(i){head.appendChild(el('th',null,D.systems[i].label));});els.thead.textContent='';els.thead.appendChild(head);
var body=document.createDocumentFragment();rows.slice((state.page-1)*PAGE,state.page*PAGE).forEach(function(s){var tr=el('tr');tr.setAttribute('data-id',s.id);
tr.appendChild(imageCell(s));var q=el('td');q.appendChild(el('div','id','id '+s.id));q.appendChild(el('div','q',s.q||'(no prompt recorded)'));
var gold=el('div');gold.appendChild(el('b',null,'gold: '));gold.appendChild(document.createTextNode(s.gold.join(' | ')));q.appendChild(gold);tr.appendChild(q);
var meta=el('td','meta');s.meta.forEach(function(kv){meta.appendChild(el('span',null,kv[0]+': '+kv[1]));});
if(s.more.length){var det=el('details');det.appendChild(el('summary',null,s.more.length+' more'));s.more.forEach(function(kv){det.appendChild(el('span',null,kv[0]+': '+kv[1]));});meta.appendChild(det);}tr.appendChild(meta);
sys.forEach(function(i){var a=s.ans[i],v=verdict(a),td=el('td','ans '+v);if(!a){td.appendChild(el('span','tag','no row'));tr.appendChild(td);return;}
if(a.o==='data_error'){td.appendChild(el('span','tag','skipped'));td.appendChild(document.createTextNode(a.r||a.e||''));tr.appendChild(td);return;}
if(a.o==='model_error'){td.appendChild(el('span','tag','model error'));td.appendChild(el('div',null,a.e));}
td.appendChild(el('div',null,a.t));Object.keys(a.s).forEach(function(m){td.appendChild(el('span','sc',m+' '+fmt(a.s[m])));});tr.appendChild(td);});
body.appendChild(tr);});els.tbody.textContent='';els.tbody.appendChild(body);}
function control(label,node){var l=el('label',null,label);l.appendChild(node);els.controls.appendChild(l);return node;}
function select(label,options,value,onchange){var s=el('select');
if(value&&!options.some(function(o){return o[0]===value;}))options=options.concat([[value,value+' (none here)']]);options.forEach(function(o){var op=el('option',null,o[1]);op.value=o[0];s.appendChild(op);});
s.value=value||'';s.addEventListener('change',function(){onchange(s.value);state.page=1;render();});return control(label,s);}
function build(){els.controls=document.getElementById('controls');
D.keys.forEach(function(k){var opts=[['','all']].concat(k.values.map(function(v){return [v[0],v[0]+' ('+v[1]+')'];}));
select(k.key,opts,state.g[k.key],function(v){state.g[k.key]=v;}).setAttribute('data-filter','g.'+k.key);});
D.systems.forEach(function(s,i){select(s.label,[['','any answer'],['correct','correct (score 1)'],['partly','partly (0 < score < 1)'],['wrong','wrong (score 0)'],['not-correct','not correct'],['model_error','model error'],['data_error','skipped']],
state.v[String(i)],function(v){state.v[String(i)]=v;}).setAttribute('data-filter','v.'+i);});
select('errors / skipped',[['','all samples'],['ok','no errors'],['model_error','a model error'],['data_error','skipped (data error)']],state.outcome,function(v){state.outcome=v;}).setAttribute('data-filter','outcome');
if(D.systems.length>1){var cb=el('input');cb.type='checkbox';cb.checked=state.disagree;cb.addEventListener('change',function(){state.disagree=cb.checked;state.page=1;render();});control('systems disagree',cb).setAttribute('data-filter','disagree');}
var sorts=[['','dataset order']];D.systems.forEach(function(s,i){D.metrics.forEach(function(m){sorts.push([i+':'+m+':desc',s.label+' · '+m+' high first']);sorts.push([i+':'+m+':asc',s.label+' · '+m+' low first']);});});
select('sort',sorts,state.sort,function(v){state.sort=v;}).setAttribute('data-filter','sort');
var search=el('input');search.type='search';search.placeholder='question, gold, answers';search.value=state.q;
search.addEventListener('input',function(){state.q=search.value;state.page=1;render();});control('search',search).setAttribute('data-filter','q');
els.count=document.getElementById('count');els.summary=document.getElementById('summary');els.pageinfo=document.getElementById('pageinfo');
els.prev=document.getElementById('prev');els.next=document.getElementById('next');els.thead=document.getElementById('thead');els.tbody=document.getElementById('tbody');
els.viewer=document.getElementById('viewer');els.big=document.getElementById('big');els.viewer.addEventListener('click',function(){els.viewer.style.display='none';});
els.prev.addEventListener('click',function(){state.page-=1;render();});els.next.addEventListener('click',function(){state.page+=1;render();});}
document.addEventListener('DOMContentLoaded',function(){D=JSON.parse(document.getElementById('explorer-data').textContent);
D.samples.forEach(function(s,i){s.pos=i;});state=readHash();build();render();
root.setAttribute('data-script-errors',String(errors));root.setAttribute('data-ready-ms',String(Math.round(performance.now())));
root.setAttribute('data-report-ready','1');});
})();
"""

SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()


def csp(sidecar: bool) -> str:
    """Only this module's script (by hash), inline style and embedded images; with a sidecar
    folder, images from the page's own location too."""
    images = "data: 'self'" if sidecar else "data:"
    return f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; script-src 'sha256-{SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
