"""A vocabulary of 1000 distinct lowercase common English words.

Used by ``metal.synthetic.generate.gaussian_bags_of_words`` to render synthetic
bags of words as text; nothing depends on the particular words or their order.
"""

__all__ = ["vocab1k"]

_WORDS = """
apple banana cherry grape lemon lime mango melon orange peach pear plum berry bread
butter cheese cream egg flour honey jam juice meat milk oil pasta pepper pie rice
salad salt sauce soup sugar tea coffee water wine beer cake candy cookie corn bean
onion potato tomato carrot garlic fish chicken beef pork lamb steak bacon ham toast
cereal nut seed grain wheat oat dog cat horse cow pig sheep goat duck goose bird
eagle hawk owl crow robin sparrow parrot rabbit mouse rat bear wolf fox deer lion
tiger monkey ape elephant zebra giraffe camel whale shark dolphin seal frog toad
snake lizard turtle spider ant bee wasp fly moth butterfly worm snail crab shrimp
insect beast animal pet head face eye ear nose mouth lip tooth tongue neck shoulder
arm elbow wrist hand finger thumb chest back belly hip leg knee ankle foot toe skin
bone blood heart lung brain muscle hair beard nail throat stomach house home room
door window wall floor roof ceiling stair kitchen bedroom bathroom garden yard fence
gate garage hall attic basement table chair desk bed sofa couch lamp shelf closet
drawer mirror carpet rug curtain pillow blanket sheet towel soap brush comb clock
bell key lock box bag basket bucket bottle cup glass plate bowl spoon fork knife pan
pot kettle oven stove sink car bus train plane ship boat truck bicycle bike wheel
engine road street bridge tunnel highway station airport harbor port track rail
ticket map driver pilot sailor passenger journey trip travel tour voyage city town
village country nation state capital center market shop store bank office school
college church temple castle palace tower museum library hospital hotel restaurant
cafe farm factory mill mine prison court park zoo theater cinema stadium sun moon
star sky cloud rain snow wind storm thunder lightning fog ice frost weather season
spring summer autumn winter morning noon evening night day week month year hour
minute second moment century decade today tomorrow yesterday earth world land ground
soil sand stone rock mountain hill valley river lake sea ocean island coast beach
shore wave desert forest jungle field meadow cave cliff pond stream swamp plain wood
tree bush leaf branch root flower rose grass weed red blue green yellow black white
brown pink purple gray silver gold copper iron steel tin lead paper plastic rubber
cotton wool silk leather metal clay one two three four five six seven eight nine ten
eleven twelve twenty thirty forty fifty hundred thousand million first last half
double single pair dozen man woman boy girl child baby adult parent mother father
son daughter brother sister uncle aunt cousin nephew niece wife husband friend
neighbor guest stranger king queen prince princess lord lady master servant soldier
captain general officer guard police judge lawyer doctor nurse teacher student pupil
farmer hunter fisher baker cook butcher tailor painter artist singer dancer actor
writer poet author reader editor clerk banker merchant trader worker builder
engineer scientist priest book page letter word line story novel poem song music
note sound voice noise silence picture photo image film movie show game sport ball
team match race prize medal goal score point rule law right duty power force money
price cost value coin cash wage salary tax debt loan profit loss trade deal sale
business company firm industry idea thought mind dream hope fear love hate joy anger
pride shame grief sorrow peace war fight battle army enemy victory defeat truth lie
fact reason cause effect result purpose plan method system process time space place
area region zone spot corner edge side top bottom front middle end start part piece
whole group set kind sort type class order level rank degree question answer problem
solution example lesson test exam mark grade course subject science history art math
language speech talk chat news report be have do say go get make know think take see
come want look use find give tell work call try ask need feel become leave put mean
keep let begin seem help hear play run move live believe bring happen write sit
stand lose pay meet include continue learn change understand watch follow stop
create speak read allow add spend grow open walk win offer remember consider appear
buy wait serve die send expect build stay fall cut reach kill remain suggest raise
pass sell require decide return explain develop carry break receive agree support
hit produce eat cover catch draw choose big small large little long short tall high
low wide narrow deep thick thin heavy light hard soft hot cold warm cool wet dry
clean dirty new old young fresh good bad great best better worse worst happy sad
glad angry calm quiet loud fast slow quick early late rich poor strong weak brave
cruel gentle rough smooth sharp dull bright dark clear empty full closed free busy
easy simple fancy pretty ugly nice fine true false real fake wrong safe dangerous
sick healthy alive dead always never often sometimes usually rarely again still
already soon now then here there very quite almost nearly just only even also too
enough perhaps maybe really truly about above across after against along among
around before behind below beneath beside between beyond during except inside near
outside since through toward under until upon within without climb swim jump dance
sing laugh cry smile shout whisper sleep wake dress wash bake boil fry drink chew
bite swallow breathe cough sneeze kick throw push pull lift drop hold shake turn
twist bend fold tie wrap pack fill pour spill mix stir computer phone screen
keyboard camera radio television machine tool hammer screw saw drill wire cable
battery switch button handle rope chain net hook pin needle thread shirt coat jacket
skirt pants shoe boot sock hat cap glove scarf belt pocket collar sleeve ring
necklace canyon glacier volcano bay gulf circle square triangle curve angle shape
size length width height weight volume speed distance north south east west left up
down wild tame fierce proud
"""

vocab1k = _WORDS.split()
