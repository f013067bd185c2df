"""Common English words: a name or symbol spelled like one needs its written case or context.

"Safe", "Useless", "Movement" or the symbol ``ONE`` are ordinary words in most posts; the matcher
only takes them as an entity when they are written as the watchlist writes them (or in capitals),
and a short symbol only with context. The list is hand-written: function words and the everyday
nouns, verbs and adjectives that projects like to borrow.
"""

from __future__ import annotations

from typing import Final

COMMON_WORDS: Final = frozenset(
    """
    a about above across act action add after again against age ago agent aim air all alpha also
    am among an and another any ape app apple apps are area arm army art as ask at atom aura away
    baby back bad bag ball ban band bank bar base be bear beat because bed bee been before begin
    being believe bell below best bet better between big bill bird bit black blast block blood blow
    blue blur board boat body bold bond bone bonk book boost born boss both bounce box boy brain
    brave bread break bridge bright bring broad brother brown bubble build bull burn bus busy but
    buy by cake call calm came camp can cap capital car card care carry case cash cat catch cause
    cell center chain chair chance change charge chart chase cheap check chess chicken chief child
    chill choice circle city claim class clean clear climb clock close cloud club coin cold color
    come common compound cook cool copy core corn cost could count country course cover cow crazy
    cream credit crew cross crowd crown cruise cry cup curve cut cycle dad daily dance dark dash
    data date day dead deal dear deep degen delta dense design dive do dock doctor does dog dollar
    done door double down draw dream dress drift drink drive drop dry duck due during dust each
    eagle ear early earn earth east easy eat echo edge egg eight either else end energy engine
    enough
    enter equal era even ever every exit eye face fact fair faith fall family fan far farm fast fat
    father fear feel few field fight figure fill film final find fine fire firm first fish five fix
    flag flame flash fleet flight floor flow fly focus fog follow food foot for force forest forge
    form fortune forward four fox free fresh friend from front frontier fruit fuel full fun fund
    future gain game gap garden gas gate gather gear gem general get ghost giant gift girl give glad
    glass global glow go goal goat god gold golden good got grace grand grass gray great green grid
    ground group grow guard guess guide gun guy hair half hall hand happy hard harmony has hash
    hat have he head health hear heart heat heavy held hello help her here hero hey hi hide high
    hill him his hit hold hole home honey hook hop hope horse host hot hour house how huge human
    hunt ice idea if image in inch index into iron is island it its jack job join joy judge juice
    jump just keep key kick kid kind king kiss kite know lab lady lake land language large last late
    launch law lay layer lead leaf lean learn least leave left leg lend less let level life lift
    light like limit line link lion list little live load loan local lock long look looks loop lord
    lose loss lost lot loud love low luck lucky mad made magic main major make maker man many map
    maps mark market mask mass master match matter may me mean meet member memory men met metal
    meta middle might mile milk mind mine mint miss mix mode model mom moment money monkey month
    moon more morning most mother motion mountain mouse move movement much music must my name
    nation native nature near need nest net network never new news next nice night nine no noble
    none noon nor north nose not note nothing now number oak ocean of off offer office oil ok old
    on once one only open optimism option or orange orbit order ore origin other our out over own
    owl pace pack page pain paint pair palm pan paper park part party pass past path pay peace peak
    pen people pepper per perfect phantom phone pick picture piece pilot pin pink pipe place plan
    plane planet plant plasma play please plus pocket point pole polygon pool poor pop port post
    pot power press price pride prime print pro prize profit proof prophecy proud pull pulse pump
    pure push put quant queen quest quick quiet race radar radio rain raise rally range rare rate
    raw ray reach read ready real realm reason red reef relay render rest rich ride right ring rise
    risk river road rock role roll room root rose round route royal rule run rush safe said sail
    salt same sand save say scale scene school scroll sea seal search season seat second secret see
    seed seek sell send sense serve set seven shadow shape share sharp she shell shield shift
    shine ship shoe shop short shot should show side sight sign signal silver simple since sing
    single sister sit six size skill sky sleep slow small smart smile smoke snow so soft soil solid
    some son song soon sort soul sound south space spark speak speed spell spend spirit split
    spot spring spy square stable stack stacks staff stage stand star start state station stay
    steel step stick still stock stone stop store storm story street strong student study style
    such sugar summer sun super sure surf swap sweet swift switch system table tail take talk tall
    tank task taste tax tea team tell ten term test than thank that the their them then there these
    they thing think third this those though three through throw thunder ticket tide tiger time
    tiny tip to today together token told tomorrow ton tone too took tool top total touch tower
    town toy track trade trail train travel tree trend trial trick trip true trump trust truth try
    turn twin two type uncle under union unit unity until up upon us use used useless user usual
    valley value van vault very view village virtual vision visit voice vote wait walk wall want
    war warm was wash watch water wave way we wealth wear weather week well went were west what
    wheel when where which while white who whole why wide wild will win wind window wine wing
    winter wise wish with wolf woman wonder wood word work world worth would write wrong yard year
    yes yet you young your zap zero zone
    """.split()
)
